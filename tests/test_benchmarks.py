"""The benchmark scripts still run (tiny sizes) and write well-formed reports; their numbers live in
BENCHMARKS.md, not in tests, so nothing here asserts a timing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

TINY = ["--rows", "2000", "--epochs", "2", "--repeats", "1"]


def read_report(directory, name):
    with open(os.path.join(directory, f"{name}.json")) as report:
        return json.load(report)


def expected_test_mse_range():
    """What 2 epochs on the 2,000-row article data can score: between the targets' variance (the
    best constant predictor; 2 epochs of Adam at 1e-3 don't get below it) and 1.1x the error of
    predicting 0 (where a fresh network starts); a per-batch, standardised or diverged value falls outside."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from peers import article_data

    y_test = article_data(2000)[3]
    return float(np.var(y_test)), 1.1 * float(np.mean(y_test ** 2))


def assert_measured(row):
    """A peer run that was not skipped and timed its epochs."""
    assert "skipped" not in row, row
    assert row["steady_epoch_s"] > 0 and row["steady_epoch_cpu_s"] > 0 and row["first_epoch_s"] > 0
    assert row["train_rows"] == 1600
    lowest, highest = expected_test_mse_range()
    assert lowest < row["test_mse"] < highest


@pytest.mark.parametrize("peer", ["numpy", "jax-scan"])
def test_benchmark_peer_reports_wall_and_cpu_time_of_every_epoch(run_script, peer):
    out = run_script("benchmarks/peers.py", peer, "--rows", "2000", "--epochs", "2", "--sizes", "5,8,1")
    result = json.loads(out.strip().splitlines()[-1])
    assert result["peer"] == peer and result["model"] == "mlp"
    assert len(result["epoch_seconds"]) == 2 and all(t > 0 for t in result["epoch_seconds"])
    assert len(result["epoch_cpu_seconds"]) == 2 and all(t >= 0 for t in result["epoch_cpu_seconds"])
    assert result["train_rows"] == 1600
    lowest, highest = expected_test_mse_range()
    assert lowest < result["test_mse"] < highest


def test_benchmark_peer_refuses_a_funcnet_model_for_other_peers():
    completed = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks/peers.py"), "numpy",
                                "--model", "dropout"], capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0
    assert "--model dropout is only for the funcnet peers" in completed.stderr


def test_bench_training_reports_ratios_against_references_and_floor(run_script, tmp_path):
    run_script("benchmarks/bench_training.py", "--workload", "seed", "--peers", "funcnet-manual,numpy",
               *TINY, "--results-dir", str(tmp_path))
    report = read_report(tmp_path, "training-seed")
    assert report["sizes"] == [5, 10, 10, 1] and report["peers"] == ["funcnet-manual", "numpy"]
    (round_,) = report["rounds"]
    assert [row["peer"] for row in round_["rows"]] == ["funcnet-manual", "numpy"]
    for row in round_["rows"]:
        assert_measured(row)
    assert round_["rows"][0]["dense_layout"] in ("columns", "rows")
    assert round_["floor_s_per_epoch"] > 0 and round_["floor_cpu_s_per_epoch"] > 0
    ratios = round_["ratios"]["funcnet-manual"]
    assert set(ratios) == {"of_floor", "of_floor_cpu", "numpy_over_funcnet", "numpy_over_funcnet_cpu"}
    assert all(value > 0 for value in ratios.values())


def test_bench_layers_compares_manual_and_autodiff_with_dropout_and_layer_norm(run_script, tmp_path):
    run_script("benchmarks/bench_layers.py", "--models", "dropout,layer_norm", "--sizes", "5,8,8,1", *TINY,
               "--results-dir", str(tmp_path))
    report = read_report(tmp_path, "layers")
    (round_,) = report["rounds"]
    assert set(round_) == {"dropout/manual", "dropout/autodiff", "layer_norm/manual", "layer_norm/autodiff"}
    for row in round_.values():
        assert_measured(row)
    for model in ("dropout", "layer_norm"):
        entry = report["summary"][model]
        assert len(entry["manual_over_autodiff"]) == 1 and entry["manual_over_autodiff"][0] > 0
        assert entry["target"] == 1.10 and isinstance(entry["met_every_round"], bool)


def test_bench_layout_runs_both_dense_layouts_through_the_environment(run_script, tmp_path):
    run_script("benchmarks/bench_layout.py", "--workload", "seed", "--modes", "manual", *TINY,
               "--results-dir", str(tmp_path))
    report = read_report(tmp_path, "layout")
    (round_,) = report["workloads"]["seed"]["rounds"]
    assert set(round_) == {"manual/columns", "manual/rows"}
    for name, row in round_.items():
        assert_measured(row)
        assert row["dense_layout"] == name.split("/")[1]  # the environment variable reached the peer
    assert report["workloads"]["seed"]["summary"]["manual"]["rows_over_columns"][0] > 0


def test_bench_versions_compares_two_source_trees(run_script, tmp_path):
    run_script("benchmarks/bench_versions.py", "--baseline", ROOT, "--workload", "seed", "--modes", "manual",
               *TINY, "--results-dir", str(tmp_path))
    report = read_report(tmp_path, "versions")
    (round_,) = report["workloads"]["seed"]["rounds"]
    assert set(round_) == {"manual/baseline", "manual/candidate"}
    for row in round_.values():
        assert_measured(row)
    assert report["workloads"]["seed"]["summary"]["manual"]["candidate_over_baseline"][0] > 0


def test_bench_parts_times_each_stage_and_counts_kernels(run_script, tmp_path):
    run_script("benchmarks/bench_parts.py", "--models", "seed", "--rows", "640", "--repeats", "1",
               "--results-dir", str(tmp_path))
    (result,) = read_report(tmp_path, "parts")["models"].values()
    stages = result["epoch_cpu_s"]
    assert {"forward loss", "manual: gradient + adam", "autodiff: gradient + adam", "shuffle"} <= set(stages)
    assert all(seconds >= 0 for seconds in stages.values())
    for grad in ("manual", "autodiff"):
        assert result["kernels_per_adam_step"][grad]["loop fusion"] > 0


def test_flops_per_epoch_counts_forward_and_backward_matmuls():
    sys.path.insert(0, f"{ROOT}/benchmarks")
    from harness import flops_per_epoch

    # 5-10-1 on 2 rows: forward 5·10 + 10·1 = 60 MACs, dW the same, dA only into layer 2: 10
    assert flops_per_epoch([5, 10, 1], 2) == 2 * 2 * (2 * 60 + 10)


def bench_sklearn():
    sys.path.insert(0, f"{ROOT}/benchmarks")
    import bench_sklearn

    return bench_sklearn


def test_bench_sklearn_order_part_moves_only_scikit_learns_batch_order():
    import sklearn.neural_network._multilayer_perceptron as sk_mlp
    from sklearn.utils import shuffle

    rows = bench_sklearn().order_spread(seeds=1, streams=2)
    assert [row["dataset"] for row in rows] == ["digits", "breast cancer", "diabetes"]
    assert sk_mlp.shuffle is shuffle  # scikit-learn's own shuffle is back
    diabetes = rows[-1]["streams"]
    assert [entry["stream"] for entry in diabetes] == [1, 2]
    # R² is continuous: two batch orders that were really used give two different fits
    assert diabetes[0]["scores"] != diabetes[1]["scores"]
    for row in rows[:2]:
        assert all(0.5 < score <= 1 for entry in row["streams"] for score in entry["scores"])


def test_bench_sklearn_order_part_refuses_a_scikit_learn_that_shuffles_elsewhere(monkeypatch):
    import sklearn.neural_network._multilayer_perceptron as sk_mlp

    monkeypatch.setattr(sk_mlp, "shuffle", lambda *arrays, **options: arrays)
    with pytest.raises(RuntimeError, match="does not shuffle through sklearn.neural_network._multilayer_perceptron"):
        bench_sklearn().order_spread(seeds=1, streams=1)


def test_bench_sklearn_refuses_an_unknown_part_naming_the_flag():
    completed = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks/bench_sklearn.py"), "--parts",
                                "speed,epochs"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert ("--parts: unknown part 'epochs'; expected a comma-separated list of score, order, speed, epoch, search"
            in completed.stderr)
