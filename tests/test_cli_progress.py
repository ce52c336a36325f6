"""The per-epoch progress line shows that epoch's own time, and its ETA leaves compilation out (issue 10, case 14).

The rule (``funcnet.cli.train_command.Reporter``): an epoch's time runs from the end of the
previous epoch's report; the run's first epoch (which compiles) shows no ETA; from the second
on, ETA = remaining epochs × mean time of the run's epochs after its first.  Timing is
checked with a fake clock, never with real time.
"""

import json
import re

import pytest

from funcnet.cli.train_command import Reporter, format_seconds


class FakeClock:
    """Returns the given times, one per call."""

    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


HISTORY = {"train_loss": [2.0], "val_loss": [3.0]}


def report(capsys, mode, epochs, first_epoch, times):
    reporter = Reporter(mode, epochs, first_epoch, clock=FakeClock(*times))
    for epoch in range(first_epoch, epochs):
        reporter.epoch(epoch, HISTORY)
    return capsys.readouterr().out.splitlines()


def timing(line):
    return re.search(r"\[(.*)\]$", line).group(1)


def test_a_compiling_first_epoch_does_not_inflate_the_eta(capsys):
    # The run: 6.5 s to compile and train epoch 1, then 0.1 s per epoch.  The old
    # formula (elapsed / done × remaining) said "ETA 19.5s" after epoch 1 for a run ending 0.3 s later.
    lines = report(capsys, "lines", 4, 0, [0.0, 6.5, 6.6, 6.7, 6.8])
    assert [timing(line) for line in lines] == [
        "6.5s incl. compile", "0.1s, ETA 0.2s", "0.1s, ETA 0.1s", "0.1s, ETA 0s"]
    assert lines[0] == "epoch 1/4  train_loss 2  val_loss 3  [6.5s incl. compile]"


def test_each_line_shows_its_own_epochs_time_and_the_eta_uses_the_mean_after_the_first(capsys):
    # Epochs after the first take 1, 3 and 2 s: the ETA after epoch k is the mean of those so far.
    lines = report(capsys, "lines", 6, 0, [10.0, 30.0, 31.0, 34.0, 36.0, 37.0, 39.0])
    assert [timing(line) for line in lines] == [
        "20s incl. compile",
        "1s, ETA 4s",          # mean(1) × 4 remaining
        "3s, ETA 6s",          # mean(1, 3) × 3
        "2s, ETA 4s",          # mean(1, 3, 2) × 2
        "1s, ETA 1.75s",       # mean(1, 3, 2, 1) × 1
        "2s, ETA 0s",
    ]


def test_a_resumed_runs_first_epoch_is_the_one_that_compiles(capsys):
    lines = report(capsys, "lines", 5, 3, [0.0, 4.0, 4.5])
    assert [line.split("  [")[0].split("  ")[0] for line in lines] == ["epoch 4/5", "epoch 5/5"]
    assert [timing(line) for line in lines] == ["4s incl. compile", "0.5s, ETA 0s"]


def test_jsonl_records_carry_epoch_time_elapsed_and_no_eta_until_the_second_epoch(capsys):
    records = [json.loads(line) for line in report(capsys, "jsonl", 3, 0, [0.0, 5.0, 5.25, 5.75])]
    assert [(r["epoch"], r["epoch_s"], r["elapsed_s"], r["eta_s"]) for r in records] == [
        (1, 5.0, 5.0, None), (2, 0.25, 5.25, 0.25), (3, 0.5, 5.75, 0.0)]


def test_quiet_prints_nothing(capsys):
    assert report(capsys, "quiet", 3, 0, [0.0, 1.0, 2.0, 3.0]) == []


@pytest.mark.parametrize("seconds, shown", [(0.0123456, "0.0123s"), (0.5, "0.5s"), (9.87, "9.87s"),
                                            (12.4, "12s"), (3600.2, "3600s"), (0.0, "0s")])
def test_durations_are_shown_with_three_significant_digits_below_ten_seconds(seconds, shown):
    assert format_seconds(seconds) == shown


def test_the_cli_shows_no_eta_on_the_compiling_first_epoch(cli_run):
    lines = [line for line in cli_run("train", "--data", "xor", "--epochs", "3").stdout.splitlines()
             if line.startswith("epoch ")]
    assert re.fullmatch(r"epoch 1/3  train_loss \S+  \[[0-9.]+s incl\. compile\]", lines[0]), lines[0]
    for line in lines[1:]:
        assert re.fullmatch(r"epoch \d/3  train_loss \S+  \[[0-9.e-]+s, ETA [0-9.e-]+s\]", line), line
