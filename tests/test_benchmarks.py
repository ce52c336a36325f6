"""The benchmark scripts still run (tiny sizes); their numbers live in BENCHMARKS.md, not in tests."""

import json

import pytest

from conftest import ROOT


@pytest.mark.parametrize("peer", ["funcnet-manual", "funcnet-autodiff", "numpy", "jax-scan"])
def test_benchmark_peer_reports_epochs_and_test_error(run_script, peer):
    out = run_script("benchmarks/peers.py", peer, "--rows", "2000", "--epochs", "2", "--sizes", "5,8,1")
    result = json.loads(out.strip().splitlines()[-1])
    assert result["peer"] == peer
    assert len(result["epoch_seconds"]) == 2 and all(t > 0 for t in result["epoch_seconds"])
    assert result["train_rows"] == 1600
    assert 0 < result["test_mse"] < 1e5


def test_flops_per_epoch_counts_forward_and_backward_matmuls():
    import sys
    sys.path.insert(0, f"{ROOT}/benchmarks")
    from bench_training import flops_per_epoch

    # 5-10-1 on 2 rows: forward 5·10 + 10·1 = 60 MACs, dW the same, dA only into layer 2: 10
    assert flops_per_epoch([5, 10, 1], 2) == 2 * 2 * (2 * 60 + 10)
