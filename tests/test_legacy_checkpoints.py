"""Checkpoints written by funcnet v1 (before layers) still load and predict bit-identically."""

import os

import numpy as np
import pytest

import funcnet as fn
from funcnet import cli

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
pytestmark = pytest.mark.default_compiler  # v1 wrote these bits with XLA's default settings
EXPECTED = np.load(os.path.join(FIXTURES, "v1_expected.npz"))


@pytest.mark.parametrize("name", ["python_softmax", "python_regression"])
def test_v1_python_checkpoints_predict_bit_identically(name):
    saved = fn.load(os.path.join(FIXTURES, f"v1_{name}.npz"))
    np.testing.assert_array_equal(np.asarray(fn.predict(saved.model, saved.params, EXPECTED["x"])),
                                  EXPECTED[name])


@pytest.mark.parametrize("name, data", [("softmax", "classes"), ("regression", "regression")])
def test_v1_cli_checkpoints_predict_bit_identically(tmp_path, name, data):
    out = tmp_path / "predictions.csv"
    status = cli.main(["predict", "--checkpoint", os.path.join(FIXTURES, f"v1_cli_{name}.npz"),
                       "--csv", os.path.join(FIXTURES, f"v1_{data}.csv"), "--out", str(out)])
    assert status == 0
    with open(os.path.join(FIXTURES, f"v1_cli_{name}_predictions.csv")) as expected:
        assert out.read_text() == expected.read()
