"""Checkpoints written by funcnet v1 (before layers) still load, and predict what they predicted.

Two claims, each as strong as the hardware allows:

* **Bit for bit, on the same machine and jaxlib.**  A v1 file loads as the same model with the same
  bits of params: its predictions equal, bit for bit, those of today's ``fn.mlp`` given the file's
  raw arrays, both computed here; and ``funcnet predict`` on the v1 file writes the very bytes it
  writes for the same checkpoint saved again by today's ``fn.save``.
* **Within a few ulps of the recorded predictions, on any CPU.**  The fixtures' predictions were
  recorded on an AVX-512 machine.  A CPU with other vector instructions (AVX2 without AVX-512; ARM's
  NEON) sums the products in another order and runs other ``tanh``/``exp`` kernels, so its last bits
  differ: up to 4.5 ulps under QEMU's Haswell model (AVX2 and FMA, no AVX-512).  The tolerance is
  :data:`ULPS` units in the last place of each output column's largest recorded magnitude (an output near 0 is a sum of terms of that
  size, so its error is measured on their scale, not its own).
"""

import csv
import json
import os

import numpy as np
import pytest

import funcnet as fn
from funcnet import cli

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
EXPECTED = np.load(os.path.join(FIXTURES, "v1_expected.npz"))
ULPS = 16  # measured: at most 4.5 under QEMU's Haswell CPU (AVX2 + FMA, no AVX-512); 16 leaves room for other kernels
# how tests/fixtures/make_v1_fixtures.py built the two Python checkpoints' models with funcnet 0.1
V1_MODELS = {
    "python_softmax": dict(sizes=[3, 6, 3], hidden="tanh", output="softmax", loss="cross_entropy"),
    "python_regression": dict(sizes=[3, 5, 4, 1], hidden="leaky_relu", output="identity", loss="mse",
                              negative_slope=0.2),
}


def assert_within_ulps(got, recorded, what):
    """``|got - recorded| ≤ ULPS · spacing(max |recorded|)``, column by column, in the recorded dtype."""
    got, recorded = np.asarray(got), np.asarray(recorded)
    assert got.shape == recorded.shape and got.dtype == recorded.dtype, (what, got.shape, got.dtype)
    scale = np.spacing(np.max(np.abs(recorded), axis=0))
    ulps = np.abs(got.astype(np.float64) - recorded.astype(np.float64)) / scale
    assert ulps.max() <= ULPS, f"{what}: {ulps.max():.1f} ulps from the recorded predictions (allowed {ULPS})"


def raw_params(path):
    """The params leaves exactly as the file stores them, read with NumPy alone, grouped per layer."""
    with np.load(path, allow_pickle=False) as archive:
        leaves = [archive[f"params/{index}"] for index in range(sum(name.startswith("params/")
                                                                      for name in archive.files))]
    return [{"W": weights, "b": bias} for weights, bias in zip(leaves[0::2], leaves[1::2])]


def read_predictions(path):
    """A predictions CSV as (header, rows of strings)."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


@pytest.mark.parametrize("name", sorted(V1_MODELS))
def test_v1_python_checkpoints_load_as_the_v1_model_and_predict_its_bits(name):
    path = os.path.join(FIXTURES, f"v1_{name}.npz")
    saved, model, params = fn.load(path), fn.mlp(**V1_MODELS[name]), raw_params(path)
    assert saved.model.describe() == model.describe()
    for loaded, stored in zip(saved.params, params):
        for key in ("W", "b"):
            assert np.asarray(loaded[key]).dtype == stored[key].dtype
            np.testing.assert_array_equal(np.asarray(loaded[key]), stored[key])
    np.testing.assert_array_equal(np.asarray(fn.predict(saved.model, saved.params, EXPECTED["x"])),
                                  np.asarray(fn.predict(model, params, EXPECTED["x"])))


@pytest.mark.parametrize("name", sorted(V1_MODELS))
@pytest.mark.default_compiler  # v1 recorded these numbers with XLA's default settings
def test_v1_python_checkpoints_predict_the_recorded_numbers_on_any_cpu(name):
    saved = fn.load(os.path.join(FIXTURES, f"v1_{name}.npz"))
    assert_within_ulps(fn.predict(saved.model, saved.params, EXPECTED["x"]), EXPECTED[name], name)


@pytest.mark.parametrize("name, data", [("softmax", "classes"), ("regression", "regression")])
def test_v1_cli_checkpoints_predict_the_bytes_of_the_same_checkpoint_saved_today(tmp_path, name, data):
    v1, today = os.path.join(FIXTURES, f"v1_cli_{name}.npz"), tmp_path / "today.npz"
    saved = fn.load(v1)
    fn.save(today, saved.model, saved.params, opt_state=saved.opt_state, history=saved.history,
            standardizer=saved.standardizer, config=saved.config, metadata=saved.metadata)
    written = []
    for checkpoint in (v1, today):
        out = tmp_path / f"predictions_{len(written)}.csv"
        assert cli.main(["predict", "--checkpoint", str(checkpoint), "--csv",
                         os.path.join(FIXTURES, f"v1_{data}.csv"), "--out", str(out)]) == 0
        written.append(out.read_bytes())
    assert written[0] == written[1]
    with np.load(today, allow_pickle=False) as archive:  # today's file is a current-version checkpoint
        assert json.loads(archive["__header__"].tobytes())["version"] > 1


@pytest.mark.parametrize("name, data", [("softmax", "classes"), ("regression", "regression")])
@pytest.mark.default_compiler  # v1 recorded these numbers with XLA's default settings
def test_v1_cli_checkpoints_predict_the_recorded_labels_and_numbers_on_any_cpu(tmp_path, name, data):
    out = tmp_path / "predictions.csv"
    assert cli.main(["predict", "--checkpoint", os.path.join(FIXTURES, f"v1_cli_{name}.npz"),
                     "--csv", os.path.join(FIXTURES, f"v1_{data}.csv"), "--out", str(out)]) == 0
    (header, rows), (recorded_header, recorded_rows) = (read_predictions(out), read_predictions(
        os.path.join(FIXTURES, f"v1_cli_{name}_predictions.csv")))
    assert header == recorded_header
    numbers = [column for column, title in enumerate(header) if title != "label"]
    # the CLI prints float32 values with repr(float(v)): parsed back to float32 they are the same bits
    as_float32 = lambda table: np.array([[float(row[c]) for c in numbers] for row in table], np.float32)
    assert_within_ulps(as_float32(rows), as_float32(recorded_rows), f"v1_cli_{name}")
    if "label" in header:
        allowed = labels_allowed_by(as_float32(recorded_rows), [title[2:] for title in header
                                                                 if title.startswith("p_")])
        for table in (recorded_rows, rows):  # the rule admits the recorded labels, and this machine's
            labels = [row[header.index("label")] for row in table]
            assert all(label in classes for label, classes in zip(labels, allowed)), (labels, allowed)


def labels_allowed_by(recorded, classes):
    """Per row, the classes whose recorded probability is within ULPS of the row's largest: one class,
    the recorded label, except where the top two were recorded almost tied (data row 29 of the softmax
    fixture: 0.33407 against 0.33406994, 6e-8 apart), where a CPU that rounds otherwise may pick either."""
    tolerance = ULPS * np.spacing(np.max(recorded, axis=0))
    return [{classes[index] for index in np.flatnonzero(row >= row.max() - tolerance)} for row in recorded]
