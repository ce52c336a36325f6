"""The examples run and print what they promise; the worked example's numbers are pinned."""

import importlib.util
import os
import re

import jax
import numpy as np
import pytest

from conftest import ROOT


def load_example(name):
    """Import ``examples/NAME.py``; an example that switches float64 on globally is switched back after."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        jax.config.update("jax_enable_x64", False)  # the tests' global mode
    return module


@pytest.mark.x64
def test_worked_example_reproduces_the_articles_numbers():
    numbers = load_example("worked_example").worked_example()
    np.testing.assert_allclose(numbers["output"][:, 0], [8.92, 12.04, 4, 4, 4.864], rtol=1e-12)
    np.testing.assert_allclose(numbers["squared_error"][:, 0], [0.0064, 0.9216, 1.0, 36.0, 34.386496], rtol=1e-9)
    np.testing.assert_allclose(numbers["output_gradient"][:, 0], [-0.08, -0.96, -1, 6, 5.864], atol=1e-12)
    np.testing.assert_allclose(numbers["article_w2_gradient"][:, 0], [-8.14616, 2.1296], rtol=1e-12)
    np.testing.assert_allclose(numbers["article_b2_gradient"], [1.9648], rtol=1e-12)
    # the article's layer-1 gradient uses the updated W2 (first row: -0.08 · W2_updated)
    np.testing.assert_allclose(numbers["article_a1_gradient"][0], -0.08 * numbers["updated_w2"][:, 0], rtol=1e-12)
    np.testing.assert_allclose(numbers["article_z1_gradient"][2:4], 0.0)  # ReLU blocks rows 3 and 4
    # the exact gradient of the mean squared error: 2/m A1ᵀ(A - Y) and 2 mean(A - Y)
    np.testing.assert_allclose(numbers["manual"][1]["W"][:, 0], [-3.258464, 0.85184], rtol=1e-12)
    np.testing.assert_allclose(numbers["manual"][1]["b"], [3.9296], rtol=1e-12)
    np.testing.assert_allclose(numbers["loss"], np.mean([0.0064, 0.9216, 1.0, 36.0, 34.386496]), rtol=1e-12)
    for manual, autodiff in zip(numbers["manual"], numbers["autodiff"]):
        for leaf in ("W", "b"):
            np.testing.assert_allclose(manual[leaf], autodiff[leaf], rtol=1e-12, atol=1e-15)


def test_worked_example_script_explains_the_differences(run_example):
    out = run_example("examples/worked_example.py")
    assert "[-8.14616  2.1296 ]" in out
    assert "updated W2 = [[0.40171069], [0.09955278]]" in out
    assert "manual backprop vs jax.grad" in out


def test_xor_example_solves_xor(run_example):
    out = run_example("examples/xor.py")
    assert "solved (every output on the right side of 0.5): True" in out
    last = float(re.search(r"last (\d+\.\d+)", out).group(1))
    assert last < 0.1


def test_regression_example_reaches_the_noise_floor(run_example):
    out = run_example("examples/regression.py")
    assert len(re.findall(r"^epoch \d+/20  train_loss [\d.]+  val_loss [\d.]+$", out, re.M)) == 20
    test_mse = float(re.search(r"Test MSE: ([\d.]+)", out).group(1))
    assert 95 < test_mse <= 102


def test_compare_grads_example_reports_tiny_differences(run_example):
    out = run_example("examples/compare_grads.py")
    worst = dict(re.findall(r"^  (.+?)\s+(\d\.\d\de[-+]\d\d)$", out, re.M))
    assert float(worst["manual vs autodiff"]) < 1e-12
    assert float(worst["manual vs finite differences"]) < 1e-6
    assert float(worst["float32 manual vs autodiff"]) < 1e-5
    assert float(worst["train_step manual vs autodiff"]) < 1e-12
    assert float(worst["train_step autodiff vs autodiff"]) < 1e-12


def test_swap_optimizers_example_trains_with_each(run_example):
    out = run_example("examples/swap_optimizers.py")
    rows = re.findall(r"^(sgd|momentum|adam|rmsprop) .*?([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert [row[0] for row in rows] == ["sgd", "momentum", "adam", "rmsprop"]
    assert all(float(row[3]) < 130 for row in rows)


def test_xor_seeds_example_trains_many_networks_in_one_program(run_example):
    out = run_example("examples/xor_seeds.py", "--seeds", "32")
    solved = float(re.search(r"solved XOR .*?: ([\d.]+)%", out).group(1))
    assert 50 < solved <= 100
    assert "final log-loss: min" in out


def test_lr_sweep_example_reports_every_rate_and_the_best(run_example):
    out = run_example("examples/lr_sweep.py", "--epochs", "1")
    rates = re.findall(r"^\s+(\d\.\d\de[-+]\d\d)\s+([\d.]+)$", out, re.M)
    assert len(rates) == 16
    best = float(re.search(r"best: lr ([\d.e+-]+), val MSE ([\d.]+)", out).group(2))
    assert best == min(float(mse) for _, mse in rates)


def test_custom_activation_example_catches_the_wrong_derivative_and_trains_with_the_right_one(run_example):
    out = run_example("examples/custom_activation.py")
    assert "ok: False, wrong parts: ['derivative', 'backward']" in out
    assert "   ok: True" in out
    difference = float(re.search(r"\|manual − autodiff\| = ([\d.e+-]+)", out).group(1))
    assert difference < 1e-6
