"""Every README snippet runs as written, and the sample session is what the command prints (issue 10, case 15).

The rules:

* **Python snippets.** Every ```` ```python ```` block runs, in this process, in the folder of a
  fresh ``tmp_path``.  The blocks of one ``## `` section (its ``###`` subsections included) run
  in order in one namespace that starts empty, so each section's first block imports and makes
  the data it needs (small synthetic data, defined in the README itself), and later blocks of
  the section may use what earlier ones defined.
* **The command-line session** (the first ```` ```console ```` block of "Command line"): each
  ``$ funcnet ...`` command that shows output runs in-process (``funcnet.cli.main``) and its
  output must equal the README's lines exactly, except the ``[...]`` timing field at the end of
  epoch lines; a ``...`` line stands for one or more lines.  ``$ cat FILE`` writes the shown lines
  to FILE.  Commands shown without output are parsed by the real argument parser (their flags
  must exist).
"""

import re
import shlex

import jax
import pytest

ROOT_README = __import__("os").path.join(__import__("os").path.dirname(__import__("os").path.dirname(
    __import__("os").path.abspath(__file__))), "README.md")


def readme_blocks(language):
    """``(section, first line number, code)`` of every ```LANGUAGE block, in README order."""
    with open(ROOT_README, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    blocks, section, inside = [], None, None
    for number, line in enumerate(lines, start=1):
        if inside is None and line.startswith("## "):
            section = line[3:].strip()
        elif inside is None and line.strip() == f"```{language}":
            inside = (section, number + 1, [])
        elif inside is not None and line.strip() == "```":
            blocks.append((inside[0], inside[1], "\n".join(inside[2]) + "\n"))
            inside = None
        elif inside is not None:
            inside[2].append(line)
    return blocks


def python_sections():
    sections = {}
    for section, number, code in readme_blocks("python"):
        sections.setdefault(section, []).append((number, code))
    return sections


def test_the_readme_has_the_snippets_this_file_runs():
    assert list(python_sections()) == ["A tour of the API", "Layers", "Many models at once", "Scaling out",
                                       "scikit-learn", "Command line"]


@pytest.mark.parametrize("section", list(python_sections()))
def test_every_python_snippet_runs_as_written(section, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    try:
        for number, code in python_sections()[section]:
            exec(compile(code, f"README.md:{number}", "exec"), namespace)
    finally:
        jax.config.update("jax_enable_x64", False)  # the tests' global mode, whatever a snippet did


def session_commands():
    """``(command line, shown output lines)`` for each ``$`` line of the Command line section's session."""
    console = [code for section, _, code in readme_blocks("console") if section == "Command line"][0]
    commands = []
    for line in console.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:].split("  #")[0].strip(), []))
        else:
            commands[-1][1].append(line)
    return commands


def masked(line):
    """An epoch line with its ``[time, ETA]`` field masked; other lines unchanged."""
    return re.sub(r"  \[[^\]]*\]$", "  [timing]", line) if line.startswith("epoch ") else line


def matches(shown, printed):
    """Does ``printed`` equal ``shown`` line for line (timings masked), with ``...`` for one or more lines?"""
    pattern = "\n".join(".+(?:\n.+)*" if line == "..." else re.escape(masked(line)) for line in shown)
    return re.fullmatch(pattern, "\n".join(masked(line) for line in printed)) is not None


def test_the_session_matcher_masks_only_timings_and_needs_every_shown_number():
    shown = ["epoch 1/3  loss 2.5  [1.4s incl. compile]", "...", "done: loss 1.25"]
    assert matches(shown, ["epoch 1/3  loss 2.5  [9s incl. compile]", "epoch 2/3", "epoch 3/3", "done: loss 1.25"])
    assert not matches(shown, ["epoch 1/3  loss 2.5  [9s]", "done: loss 1.25"])        # "..." is 1+ lines
    assert not matches(shown, ["epoch 1/3  loss 2.51  [1.4s incl. compile]", "x", "done: loss 1.25"])
    assert not matches(shown, ["epoch 1/3  loss 2.5  [1.4s incl. compile]", "x", "done: loss 1.26"])


@pytest.mark.default_compiler  # the README shows what a user's default compiler prints, to the last digit
def test_the_command_line_session_is_what_the_commands_print(cli_run, tmp_path):
    from funcnet.cli.parser import build_parser

    ran = []
    for command, shown in session_commands():
        words = shlex.split(command.split(" > ")[0])
        if words[0] == "cat":
            (tmp_path / words[1]).write_text("\n".join(shown) + "\n")
        elif not shown:
            build_parser().parse_args(words[1:])  # flags shown without output must exist
        else:
            assert words[0] == "funcnet", command
            printed = cli_run(*words[1:]).stdout.splitlines()
            assert matches(shown, printed), f"$ {command}\n" + "\n".join(printed)
            ran.append(words[1])
    assert ran == ["train", "predict"]


def test_the_examples_table_lists_every_example_script_and_no_other():
    """The "Examples" section's table names each ``examples/*.py`` once, and only files that exist."""
    import os

    examples = os.path.join(os.path.dirname(ROOT_README), "examples")
    with open(ROOT_README, encoding="utf-8") as handle:
        section = handle.read().split("\n## Examples\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `examples/([^`]+\.py)` \|", section, flags=re.MULTILINE)
    assert len(listed) == len(set(listed)), listed
    assert sorted(listed) == sorted(name for name in os.listdir(examples) if name.endswith(".py"))
