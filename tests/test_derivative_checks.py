"""fn.derivative_checks: check_activation, check_loss and check_layer: built-ins pass, injected mistakes are named and sized."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet import derivative_checks


@pytest.fixture(autouse=True)
def strict_dtype_promotion():
    """No silent float32/float64 mixing inside the checks (equinox's strict test setup)."""
    with jax.numpy_dtype_promotion("strict"):
        yield


def mish(z):
    """``z tanh(softplus z)``."""
    return z * jnp.tanh(jax.nn.softplus(z))


def d_mish(z):
    """``tanh(sp) + z (1 − tanh² sp) σ(z)`` with ``sp = softplus z``."""
    t = jnp.tanh(jax.nn.softplus(z))
    return t + z * (1 - t) * (1 + t) * jax.nn.sigmoid(z)


@functools.lru_cache(maxsize=None)
def mish_with_derivative_times(factor):
    """mish whose hand-written derivative is ``factor`` times the true one; one object (and compile) per factor."""
    return fn.activation("mish", mish, lambda z: factor * d_mish(z))


def scale_layer(name="scale", backward=None):
    """A learnable per-feature scale and shift, ``y = x ⊙ s + t``, with a hand-written backward."""

    def right_backward(params, x, dy):
        return {"s": jnp.sum(dy * x, axis=0), "t": jnp.sum(dy, axis=0)}, dy * params["s"][None, :]

    return fn.layer(name, lambda key, n, dtype: {"s": jnp.ones((n,), dtype), "t": jnp.zeros((n,), dtype)},
                    lambda params, x: (x * params["s"][None, :] + params["t"][None, :], x), backward or right_backward)


# ----------------------------------------------------------------------------- built-ins pass
ELEMENTWISE = [name for name in fn.activations.ACTIVATION_NAMES if name != "softmax"]


@pytest.mark.parametrize("act", [*fn.activations.ACTIVATION_NAMES, fn.activations.get_activation("leaky_relu", negative_slope=0.2),
                                 fn.activations.get_activation("elu", alpha=0.5)],
                         ids=[*fn.activations.ACTIVATION_NAMES, "leaky_relu(0.2)", "elu(0.5)"])
def test_every_builtin_activation_passes(act):
    report = fn.derivative_checks.check_activation(act)
    assert report.ok, str(report)
    assert report.failures == []


def test_elementwise_activation_is_checked_as_derivative_and_backward():
    assert [part.part for part in fn.derivative_checks.check_activation("tanh").parts] == ["derivative", "backward"]


def test_softmax_is_checked_through_its_jacobian_backward():
    report = fn.derivative_checks.check_activation("softmax")
    assert [part.part for part in report.parts] == ["backward"]
    assert report.ok and report["backward"].max_rel_vs_jax < 1e-12


LOSSES = [("mse", None), ("mae", None), ("huber", None), (fn.losses.huber(0.25), None), (fn.losses.huber(3.0), None),
          ("logloss", None), ("cross_entropy", None), ("mse", ["sigmoid", "tanh", "softmax"]),
          ("mae", ["sigmoid", "softplus"]), (fn.losses.huber(0.5), ["tanh", "softmax"])]


@pytest.mark.parametrize("loss, output", LOSSES,
                         ids=["mse", "mae", "huber", "huber(0.25)", "huber(3)", "logloss", "cross_entropy",
                              "mse-other-outputs", "mae-other-outputs", "huber(0.5)-other-outputs"])
def test_every_builtin_loss_passes(loss, output):
    report = fn.derivative_checks.check_loss(loss, output=output)
    assert report.ok, str(report)
    assert len(report.parts) == (len(output) if output else 2 if loss == "cross_entropy" else 1)


def test_cross_entropy_is_checked_with_class_ids_and_one_hot_labels():
    names = [part.part for part in fn.derivative_checks.check_loss("cross_entropy").parts]
    assert names == ["output_delta (output=softmax, labels=classes)", "output_delta (output=softmax, labels=one-hot)"]


def test_huber_report_names_its_delta():
    assert fn.derivative_checks.check_loss(fn.losses.huber(0.25)).subject == "loss 'huber' (delta=0.25)"


LAYERS = ([(fn.dense(4, name), f"dense-{name}") for name in ELEMENTWISE]
          + [(fn.dense(4, "tanh", bias=False), "dense-no-bias"),  # 4 units, as above: init's eager ops reused
             (fn.dense(4, "relu", initializer="glorot"), "dense-glorot"),
             (fn.layers.activation_layer("gelu"), "activation-gelu"), (fn.layers.activation_layer("leaky_relu"), "activation-leaky"),
             (fn.dropout(0.0), "dropout-0"), (fn.dropout(0.3), "dropout-0.3"), (fn.layer_norm(), "layer_norm"),
             (fn.layer_norm(1e-2), "layer_norm-eps"), (scale_layer(), "custom-scale")])


@pytest.mark.parametrize("layer", [layer for layer, _ in LAYERS], ids=[name for _, name in LAYERS])
def test_every_builtin_layer_kind_passes(layer):
    report = fn.derivative_checks.check_layer(layer, 3)
    assert report.ok, str(report)


# the layers (and n_in) of LAYERS above, so that their checks are compiled once for both tests
@pytest.mark.parametrize("layer, parts", [
    (fn.dense(4, "relu"), ["params['W']", "params['b']", "x", "infer"]),
    (fn.dense(4, "tanh", bias=False), ["params['W']", "x", "infer"]),
    (fn.layer_norm(), ["params['scale']", "params['shift']", "x"]),
    (fn.dropout(0.3), ["x"]),
], ids=["dense", "dense-no-bias", "layer_norm", "dropout"])
def test_layer_report_has_one_row_per_params_leaf_then_x_then_infer(layer, parts):
    assert [part.part for part in fn.derivative_checks.check_layer(layer, 3).parts] == parts


def test_large_layer_is_checked_on_a_sample_of_coordinates():
    layer = fn.dense(300, "tanh")  # W has 600 > MAX_COORDINATES entries
    report = fn.derivative_checks.check_layer(layer, 2, batch=2)
    assert report.ok, str(report)
    assert 2 * 300 > derivative_checks.MAX_COORDINATES


def test_keyed_layer_gets_the_same_key_in_backward_vjp_and_finite_differences():
    def forward(params, x, key):
        noise = jax.random.normal(key, x.shape, x.dtype)
        return x * jnp.exp(params["log_sigma"] * noise), (x, noise)

    def backward(params, cache, dy):
        x, noise = cache
        y = x * jnp.exp(params["log_sigma"] * noise)
        return {"log_sigma": jnp.sum(dy * y * noise)}, dy * jnp.exp(params["log_sigma"] * noise)

    noisy = fn.layer("noisy", lambda key, n, dtype: {"log_sigma": jnp.zeros((), dtype)}, forward, backward,
                     needs_key=True)
    report = fn.derivative_checks.check_layer(noisy, 3, key=jax.random.key(5))
    assert report.ok, str(report)


# ----------------------------------------------------------------------------- mistakes are named
@pytest.mark.parametrize("factor", [1.01, 1.5, 0.0, -1.0])
def test_wrong_activation_derivative_fails_and_reports_the_injected_error(factor):
    report = fn.derivative_checks.check_activation(mish_with_derivative_times(factor))
    assert not report.ok
    assert report.failures[0] == "derivative"
    # max|f d − d| / max(max|f d|, max|d|) = |f − 1| / max(|f|, 1), against both references
    assert report["derivative"].max_rel_vs_jax == pytest.approx(abs(factor - 1) / max(abs(factor), 1), rel=1e-9)
    assert report["derivative"].max_rel_vs_finite_differences == pytest.approx(abs(factor - 1) / max(abs(factor), 1),
                                                                               rel=1e-6)


def test_right_mish_derivative_passes():
    report = fn.derivative_checks.check_activation(fn.activation("mish", mish, d_mish))
    assert report.ok, str(report)
    assert report["derivative"].max_rel_vs_jax < 1e-13


def test_derivative_wrong_only_for_negative_inputs_is_caught():
    leaky = fn.activation("my_leaky", lambda z: jnp.where(z > 0, z, 0.1 * z),
                          lambda z: jnp.where(z > 0, 1.0, 0.01).astype(z.dtype), initializer="he")
    report = fn.derivative_checks.check_activation(leaky)
    assert report.failures == ["derivative", "backward"]
    assert report["derivative"].max_abs_vs_jax == pytest.approx(0.09)


def test_a_point_on_a_kink_is_reported_as_a_kink_and_checked_against_the_one_sided_differences():
    report = fn.derivative_checks.check_activation("relu", points=[0.0, 1.0, -1.0])
    assert report.ok, str(report)  # relu'(0) = 0 lies between the one-sided differences 0 and 1
    assert report.kinks == (0.0,)
    assert report["derivative"].max_abs_vs_jax == 0.0 and report["derivative"].max_abs_vs_finite_differences == 0.0
    assert ("kinks within ε of z = 0: the one-sided differences differ there, and the derivative must lie "
            "between them") in str(report)


@pytest.mark.parametrize("at_zero, ok", [(1.0, True), (0.5, True), (2.0, False), (-0.5, False), (np.nan, False)])
def test_at_a_kink_any_value_between_the_one_sided_derivatives_passes_and_others_fail(at_zero, ok):
    relu = fn.activation("my_relu", lambda z: jnp.where(z > 0, z, 0.0),
                         lambda z: jnp.where(z == 0, at_zero, (z > 0).astype(z.dtype)), initializer="he")
    report = fn.derivative_checks.check_activation(relu, points=[0.0, 1.0, -1.0])
    assert report.ok is ok and report.kinks == (0.0,), str(report)


# the default points within ε of 0, where relu's one-sided differences differ: 0, ±1e-300 and ±1e-8 ... ±9.5e-7
NEAR_ZERO = tuple(sorted({float(z) for z in derivative_checks._default_points().ravel()
                          if abs(z) < derivative_checks.EPSILON}))


def test_a_relu_whose_jax_derivative_splits_the_tie_still_passes():
    # jax.grad(jnp.maximum(z, 0)) is ½ at 0, this g' says 0: both lie between the one-sided derivatives
    relu = fn.activation("max_relu", lambda z: jnp.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype),
                         initializer="he")
    report = fn.derivative_checks.check_activation(relu)
    assert report.ok and report.kinks == NEAR_ZERO, str(report)


@pytest.mark.parametrize("act, kinks", [("relu", NEAR_ZERO), ("leaky_relu", NEAR_ZERO),
                                        (fn.activations.get_activation("elu", alpha=0.5), NEAR_ZERO),
                                        ("elu", ()), ("tanh", ()), ("gelu", ()), ("softplus", ())],
                         ids=["relu", "leaky_relu", "elu(0.5)", "elu", "tanh", "gelu", "softplus"])
def test_builtin_kinks_are_reported_as_kinks_not_failures(act, kinks):
    report = fn.derivative_checks.check_activation(act)  # the default points of test_every_builtin_activation_passes: compiled once
    assert report.ok and report.kinks == kinks, str(report)
    if kinks:  # 203 points, printed as one range
        assert ("kinks within ε of z = -9.54993e-07 … 9.54993e-07 (203 points): the one-sided differences differ "
                "there") in str(report)


# ----------------------------------------------------------------------------- the whole real line (issue 21, item 9)
def test_the_default_points_are_a_dense_deterministic_cover_of_the_real_line():
    points = derivative_checks._default_points()
    assert points.shape == (3460, 4) and np.array_equal(points, derivative_checks._default_points())
    z = points.ravel()
    assert np.all(np.diff(z) >= 0) and np.signbit(z[z == 0]).sum() == 1  # sorted; 0 and -0 both
    for exact in (0.0, 1.0, -1.0, 1e-8, -1e-8, 1e4, -1e4, 1e300, -1e300):
        assert exact in z, exact
    uniform = z[np.abs(z) <= 20]
    assert np.max(np.diff(uniform)) <= 0.05 + 1e-12 and uniform[0] == -20 and uniform[-1] == 20
    for sign in (1.0, -1.0):
        magnitudes = np.sort(sign * z[(sign * z >= 1e-8) & (sign * z <= 1e4)])
        assert np.max(magnitudes[1:] / magnitudes[:-1]) <= 10 ** (1 / 50) * (1 + 1e-12)  # ≥ 50 a decade
        far = np.sort(sign * z[sign * z >= 1e4])
        assert np.max(far[1:] / far[:-1]) <= 10 ** (1 / 20) * (1 + 1e-12) and far[-1] == 1e300


TANH_DERIVATIVE = fn.activations.d_tanh


@pytest.mark.parametrize("low, high", [(6, 9), (12, 18), (40, 90), (-0.9, -0.6)])
def test_a_derivative_wrong_only_on_an_interval_is_caught(low, high):
    # the round-2 reviewer's intervals, each between the old grid's points; 2 random points a decade missed them
    wrong = fn.activation("tanh_band", jnp.tanh,
                          lambda z: jnp.where((z > low) & (z < high), 0.5 + TANH_DERIVATIVE(z), TANH_DERIVATIVE(z)))
    report = fn.derivative_checks.check_activation(wrong)
    assert report.failures == ["derivative", "backward"], str(report)
    assert report["derivative"].max_abs_vs_jax == pytest.approx(0.5)


def test_a_derivative_nan_for_every_large_input_is_caught_where_only_finiteness_is_checked():
    # beyond |z| = 1e4 no numbers are compared (finite differences round away), but tanh' = 0 is finite there
    wrong = fn.activation("tanh_nan_far", jnp.tanh, lambda z: jnp.where(jnp.abs(z) > 1e4, jnp.nan, TANH_DERIVATIVE(z)))
    report = fn.derivative_checks.check_activation(wrong)
    assert report.failures == ["derivative", "backward"]
    assert report["derivative"].max_rel_vs_jax < 1e-15  # the numbers compared agree
    assert report["derivative"].note == ("not finite at 11840 of 13840 points where jax is finite, "
                                         "first z = -1e+300")


def test_beyond_the_compared_range_only_finiteness_counts():
    # a derivative off by 10 % beyond 1e4 is not compared there (stated resolution), but a user's points inside are
    wrong = fn.activation("tanh_far", jnp.tanh, lambda z: jnp.where(jnp.abs(z) > 1e4, 2.0, TANH_DERIVATIVE(z)))
    assert fn.derivative_checks.check_activation(wrong).ok
    assert fn.derivative_checks.check_activation(wrong, points=[5e3, 2e4]).ok


def test_a_derivative_wrong_only_below_minus_5_is_caught():
    wrong = fn.activation("mish", mish, lambda z: jnp.where(z < -5, 0.0, d_mish(z)))
    report = fn.derivative_checks.check_activation(wrong)
    assert report.failures == ["derivative", "backward"], str(report)
    assert report["derivative"].max_abs_vs_jax > 1e-4  # |mish'(−10)| ≈ 4e-4


def test_a_derivative_that_is_nan_at_exactly_zero_is_caught_and_located():
    # Φ(z) written as gelu(z) / z: 0/0 at z = 0 only, where gelu and jax's derivative are finite
    nan_at_zero = fn.activation("gelu_by_ratio", fn.activations.gelu,
                                lambda z: fn.activations.gelu(z) / z + z * jnp.exp(-0.5 * z * z) / np.sqrt(2 * np.pi))
    report = fn.derivative_checks.check_activation(nan_at_zero)
    assert report.failures == ["derivative", "backward"]
    assert report["derivative"].note == "not finite at 2 of 13840 points where jax is finite, first z = -0"
    assert "WRONG (not finite at 2 of 13840 points where jax is finite, first z = -0)" in str(report)


def test_a_derivative_wrong_only_above_20_is_caught():
    # softplus with PyTorch's threshold 20, whose derivative forgets that the linear branch has slope 1
    softplus_20 = fn.activation("softplus_20", lambda z: jnp.where(z > 20, z, jnp.log1p(jnp.exp(jnp.minimum(z, 20)))),
                                lambda z: jnp.where(z > 20, 0.0, jax.nn.sigmoid(z)), initializer="he")
    report = fn.derivative_checks.check_activation(softplus_20)
    assert report.failures == ["derivative", "backward"]
    assert report["derivative"].max_abs_vs_jax == pytest.approx(1.0)


def test_an_activation_that_overflows_is_compared_only_where_jax_is_finite():
    # exp overflows at 1e3 and 1e4: jax's derivative is inf there, so nothing is compared; everywhere else it is
    report = fn.derivative_checks.check_activation(fn.activation("exp", jnp.exp, jnp.exp))
    assert report.ok, str(report)
    wrong = fn.derivative_checks.check_activation(fn.activation("exp", jnp.exp, lambda z: jnp.where(z > 50, 0.0, jnp.exp(z))))
    assert wrong.failures == ["derivative", "backward"]


def test_a_loss_wrong_only_for_large_residuals_is_caught():
    # huber with δ = 10 written by hand, but its gradient clipped at ±1: wrong only where |A − Y| > 1
    clipped = fn.loss("huber10", lambda a, y: fn.losses.huber_error(a, y, 10.0),
                      lambda a, y: jnp.clip(a - y, -1.0, 1.0) / a.shape[-1])
    report = fn.derivative_checks.check_loss(clipped, output="identity")
    assert report.failures == ["output_delta (output=identity)"]


def test_a_layer_wrong_only_for_large_inputs_is_caught():
    # y = tanh(x), whose backward uses the first terms of tanh's series, 1 − x², right only near 0
    approximate = fn.layer("series_tanh", lambda key, n, dtype: {}, lambda p, x: (jnp.tanh(x), x),
                           lambda p, x, dy: ({}, dy * jnp.where(jnp.abs(x) < 3.0, 1 - jnp.tanh(x) ** 2, 1.0)))
    report = fn.derivative_checks.check_layer(approximate, 3)
    assert report.failures == ["x"]


def test_loss_with_delta_off_by_a_factor_two_fails_for_every_output():
    twice = fn.loss("twice_mse", lambda a, y: jnp.mean((a - y) ** 2, axis=-1),
                    lambda a, y: 4 * (a - y) / a.shape[-1])
    report = fn.derivative_checks.check_loss(twice)
    assert report.failures == ["output_delta (output=identity)", "output_delta (output=sigmoid)",
                               "output_delta (output=softmax)"]
    for part in report.parts:  # twice the truth: |2δ − δ| / |2δ|
        assert part.max_rel_vs_jax == pytest.approx(0.5, rel=1e-9)


def test_builtin_loss_with_a_doubled_fused_delta_fails():
    logloss = fn.losses.get_loss("logloss")
    doubled = logloss._replace(output_delta=lambda z, y, g: 2 * logloss.output_delta(z, y, g))
    report = fn.derivative_checks.check_loss(doubled)
    assert report.failures == ["output_delta (output=sigmoid)"]
    assert report.parts[0].max_rel_vs_finite_differences == pytest.approx(0.5, rel=1e-6)


def test_custom_loss_is_checked_with_identity_sigmoid_and_softmax_outputs():
    logcosh = fn.loss("logcosh", lambda a, y: jnp.mean(jnp.log(jnp.cosh(a - y)), axis=-1),
                      lambda a, y: jnp.tanh(a - y) / a.shape[-1])
    report = fn.derivative_checks.check_loss(logcosh)
    assert report.ok, str(report)
    assert [part.part for part in report.parts] == ["output_delta (output=identity)", "output_delta (output=sigmoid)",
                                                    "output_delta (output=softmax)"]
    assert [part.part for part in fn.derivative_checks.check_loss(logcosh, n_out=1).parts] == [
        "output_delta (output=identity)", "output_delta (output=sigmoid)"]


def test_loss_takes_one_output_activation_of_your_own():
    mish_activation = fn.activation("mish", mish, d_mish)
    report = fn.derivative_checks.check_loss("mse", output=mish_activation)
    assert [part.part for part in report.parts] == ["output_delta (output=mish)"]
    assert report.ok, str(report)


def test_custom_layer_with_a_wrong_dx_fails_on_x_only():
    layer = scale_layer(backward=lambda p, x, dy: ({"s": jnp.sum(dy * x, 0), "t": jnp.sum(dy, 0)}, dy))
    report = fn.derivative_checks.check_layer(layer, 3)
    assert report.failures == ["x"]
    assert report["x"].max_rel_vs_jax > 0.01


@pytest.mark.parametrize("leaf", ["s", "t"])
def test_custom_layer_with_a_wrong_params_leaf_fails_on_that_leaf(leaf):
    def backward(params, x, dy):
        grads = {"s": jnp.sum(dy * x, 0), "t": jnp.sum(dy, 0)}
        grads[leaf] = 1.5 * grads[leaf]
        return grads, dy * params["s"][None, :]

    report = fn.derivative_checks.check_layer(scale_layer(backward=backward), 3)
    assert report.failures == [f"params['{leaf}']"]
    assert report[f"params['{leaf}']"].max_rel_vs_jax == pytest.approx(0.5 / 1.5, rel=1e-9)


@pytest.mark.parametrize("grads, part, note", [
    ({"s": jnp.zeros(3)}, "params['t']", "missing from backward's dparams"),
    ({"s": jnp.zeros(3), "t": jnp.zeros(3), "u": jnp.zeros(3)}, "params['u']", "not in params"),
    ({"s": jnp.zeros(2), "t": jnp.zeros(3)}, "params['s']", r"shape \(2,\), expected \(3,\)"),
], ids=["missing-leaf", "extra-leaf", "wrong-shape"])
def test_backward_with_a_malformed_dparams_fails_with_a_note(grads, part, note):
    report = fn.derivative_checks.check_layer(scale_layer(backward=lambda p, x, dy: (grads, dy * p["s"][None, :])), 3)
    assert part in report.failures
    assert re.search(note, report[part].note)
    assert re.search(note, str(report))


def test_an_infer_that_differs_from_the_training_forward_fails_on_infer():
    dense = fn.dense(4, "tanh")
    layer = dense._replace(infer_fn=lambda params, x: 1.001 * dense.infer(params, x))
    report = fn.derivative_checks.check_layer(layer, 3)
    assert report.failures == ["infer"]
    assert report["infer"].max_rel_vs_jax == pytest.approx(1e-3 / 1.001, rel=1e-6)
    assert report["infer"].max_abs_vs_finite_differences is None
    with pytest.warns(DeprecationWarning, match=r'the part "predict" .* is deprecated: use report\["infer"\]'):
        assert report["predict"] is report["infer"]


def test_a_layer_of_your_own_with_its_own_infer_is_checked_against_its_forward():
    right = fn.layer("double", lambda key, n, dtype: {}, lambda params, x: (2 * x, None),
                     lambda params, cache, dy: ({}, 2 * dy), infer=lambda params, x: x + x)
    wrong = right._replace(infer_fn=lambda params, x: 3 * x)
    assert [part.part for part in fn.derivative_checks.check_layer(right, 3).parts] == ["x", "infer"]
    assert fn.derivative_checks.check_layer(right, 3).ok
    assert fn.derivative_checks.check_layer(wrong, 3).failures == ["infer"]


# ----------------------------------------------------------------------------- the report
def test_report_prints_one_row_per_part_and_marks_the_wrong_one():
    text = str(fn.derivative_checks.check_activation(mish_with_derivative_times(1.5)))  # as in the test above: compiled once
    lines = text.splitlines()
    assert lines[0] == "activation 'mish': WRONG: derivative, backward"
    assert lines[1].split()[:2] == ["part", "max"]
    derivative_row = lines[2].split()
    assert derivative_row[0] == "derivative" and derivative_row[-1] == "WRONG"
    assert float(derivative_row[2]) == pytest.approx(0.5 / 1.5, rel=0.05)  # max rel vs jax, printed
    assert "1e-06 vs jax" in lines[-1] and "1e-05 vs central differences" in lines[-1]


def test_passing_report_prints_ok():
    text = str(fn.derivative_checks.check_layer(fn.layer_norm(), 3))
    assert text.splitlines()[0].endswith(": ok")
    assert all(line.endswith("ok") for line in text.splitlines()[2:-1])


def test_report_looks_up_a_part_by_name_and_names_the_parts_on_a_miss():
    report = fn.derivative_checks.check_layer(fn.dense(4, "identity"), 3)  # as in LAYERS: compiled once
    assert report["x"].part == "x"
    with pytest.raises(KeyError, match=r"no part 'y'; its parts are params\['W'\], params\['b'\], x, infer"):
        report["y"]


def test_looser_tolerance_lets_an_approximate_derivative_pass():
    approximate = fn.activation("mish", mish, lambda z: (1 + 1e-4) * d_mish(z))
    assert not fn.derivative_checks.check_activation(approximate).ok
    assert fn.derivative_checks.check_activation(approximate, autodiff_rtol=1e-3, finite_difference_rtol=1e-3).ok


def test_numpy_scalars_are_accepted_for_every_number():
    # the same shapes as test_every_builtin_layer_kind_passes / test_every_builtin_loss_passes: compiled once
    report = fn.derivative_checks.check_layer(fn.dense(4, "gelu"), np.int64(3), batch=np.uint8(4), autodiff_rtol=np.float32(1e-6))
    assert report.ok and "n_in=3, batch=4" in report.subject
    assert fn.derivative_checks.check_loss("mse", n_out=np.int32(3), batch=np.int64(5), finite_difference_rtol=np.float64(1e-5)).ok


def test_checks_are_deterministic_for_a_key_and_differ_between_keys():
    first = fn.derivative_checks.check_layer(fn.dense(4, "gelu"), 3, key=jax.random.key(1))  # as in LAYERS: compiled once
    assert first == fn.derivative_checks.check_layer(fn.dense(4, "gelu"), 3, key=jax.random.key(1))
    assert first != fn.derivative_checks.check_layer(fn.dense(4, "gelu"), 3, key=jax.random.key(2))


def test_checks_run_in_float64_when_the_caller_has_not_enabled_x64():
    assert not jax.config.jax_enable_x64  # the tests' default mode: float32
    reports = [fn.derivative_checks.check_layer(fn.dense(4, "gelu"), 3), fn.derivative_checks.check_activation("softplus"), fn.derivative_checks.check_loss("huber")]
    assert all(report.ok for report in reports), [str(report) for report in reports]
    # float64 rounding, far below float32's 6e-8
    assert max(part.max_rel_vs_jax for report in reports for part in report.parts) < 1e-12
    assert not jax.config.jax_enable_x64 and jnp.ones(1).dtype == jnp.float32  # the caller's setting is untouched


# ----------------------------------------------------------------------------- bad arguments
def wide_layer():
    """A layer whose forward doubles the width although its output_size says it keeps it."""
    return fn.layer("wide", lambda key, n, dtype: {}, lambda params, x: (jnp.concatenate([x, x], 1), None),
                    lambda params, cache, dy: ({}, dy))


def row_loss():
    """A loss whose per_sample forgets to reduce over the outputs."""
    return fn.loss("rows", lambda a, y: (a - y) ** 2, lambda a, y: 2 * (a - y))


def first_column():
    return fn.activation("first", lambda z: z[..., :1], lambda z: z)


ERRORS = [
    pytest.param(lambda: fn.derivative_checks.check_activation("swish"), ValueError,
                 r"`act` is 'swish', not an activation; expected one of identity", id="unknown-activation-name"),
    pytest.param(lambda: fn.derivative_checks.check_activation(3), TypeError,
                 r"`act` must be an activation name or fn.activation\(...\), got int", id="activation-not-a-name"),
    pytest.param(lambda: fn.derivative_checks.check_activation("relu", points=[]), ValueError,
                 r"`points` must be a non-empty array of finite numbers", id="empty-points"),
    pytest.param(lambda: fn.derivative_checks.check_activation("relu", points=[1.0, np.nan]), ValueError,
                 r"`points` must be a non-empty array of finite numbers", id="nan-points"),
    pytest.param(lambda: fn.derivative_checks.check_activation("relu", points="abc"), TypeError,
                 r"`points` must be an array of real numbers", id="points-not-numbers"),
    pytest.param(lambda: fn.derivative_checks.check_activation(first_column()), ValueError,
                 r"activation 'first': `function` maps points of shape \(3460, 4\) to shape \(3460, 1\)",
                 id="activation-changes-shape"),
    pytest.param(lambda: fn.derivative_checks.check_activation("relu", autodiff_rtol=0), ValueError,
                 r"`autodiff_rtol` must be in \(0(\.0)?, inf\], got 0.0", id="zero-autodiff-rtol"),
    pytest.param(lambda: fn.derivative_checks.check_activation("relu", finite_difference_rtol="1e-5"), TypeError,
                 r"`finite_difference_rtol` must be a real number, got '1e-5' \(str\)", id="string-rtol"),
    pytest.param(lambda: fn.derivative_checks.check_activation("relu", autodiff_rtol=float("nan")), ValueError,
                 r"`autodiff_rtol` must be finite, got nan", id="nan-rtol"),
    pytest.param(lambda: fn.derivative_checks.check_loss("mse", finite_difference_rtol=float("inf")), ValueError,
                 r"`finite_difference_rtol` must be finite, got inf", id="inf-rtol"),
    pytest.param(lambda: fn.derivative_checks.check_activation("relu", key=0), ValueError,
                 r"`key` must be a jax.random key, got 0; make one with jax.random.key\(0\) and pass it as "
                 r"fn\.derivative_checks\.check_activation\(\.\.\., key=", id="bad-activation-key"),
    pytest.param(lambda: fn.derivative_checks.check_loss("hinge"), ValueError,
                 r"`loss` is 'hinge', not a loss; expected one of mse, mae", id="unknown-loss-name"),
    pytest.param(lambda: fn.derivative_checks.check_loss(42), TypeError,
                 r"`loss` must be a loss name or fn.loss\(...\), got int", id="loss-not-a-name"),
    pytest.param(lambda: fn.derivative_checks.check_loss("logloss", output="identity"), ValueError,
                 r"`output='identity'` does not pair with loss 'logloss'; it takes output 'sigmoid'",
                 id="output-does-not-pair"),
    pytest.param(lambda: fn.derivative_checks.check_loss("mse", output="swish"), ValueError,
                 r"`output='swish'` is not an activation", id="unknown-output"),
    pytest.param(lambda: fn.derivative_checks.check_loss("mse", output=[1]), TypeError,
                 r"`output` must be an activation name", id="output-not-a-name"),
    pytest.param(lambda: fn.derivative_checks.check_loss("mse", output=[]), ValueError,
                 r"`output` is an empty list", id="empty-output-list"),
    pytest.param(lambda: fn.derivative_checks.check_loss("mse", n_out=0), ValueError,
                 r"check_loss: `n_out` must be an integer ≥ 1, got 0", id="zero-n_out"),
    pytest.param(lambda: fn.derivative_checks.check_loss("mse", batch=2.5), TypeError,
                 r"check_loss: `batch` must be an integer ≥ 1, got 2.5 \(float\)", id="fractional-batch"),
    pytest.param(lambda: fn.derivative_checks.check_loss("cross_entropy", n_out=1), ValueError,
                 r"needs `n_out` ≥ 2 \(one output per class\), got 1", id="cross_entropy-one-output"),
    pytest.param(lambda: fn.derivative_checks.check_loss(row_loss()), ValueError,
                 r"loss 'rows': `per_sample` returned shape \(5, 3\), expected \(batch,\) = \(5,\)",
                 id="per_sample-not-per-sample"),
    pytest.param(lambda: fn.derivative_checks.check_layer("relu", 3), TypeError,
                 r"`layer` must be a layer .* got str: 'relu'; for an activation use fn.derivative_checks.check_activation",
                 id="layer-is-a-string"),
    pytest.param(lambda: fn.derivative_checks.check_layer(fn.dense(2), 0), ValueError,
                 r"check_layer: `n_in` must be an integer ≥ 1, got 0", id="zero-n_in"),
    pytest.param(lambda: fn.derivative_checks.check_layer(fn.dense(2), True), TypeError,
                 r"check_layer: `n_in` must be an integer ≥ 1, got the bool True", id="bool-n_in"),
    pytest.param(lambda: fn.derivative_checks.check_layer(fn.dense(2), 2, batch=0), ValueError,
                 r"check_layer: `batch` must be an integer ≥ 1, got 0", id="zero-batch"),
    pytest.param(lambda: fn.derivative_checks.check_layer(fn.dense(2), 2, key="seed"), ValueError,
                 r"`key` must be a jax.random key.*pass it as fn\.derivative_checks\.check_layer\(\.\.\., key=",
                 id="bad-layer-key"),
    pytest.param(lambda: fn.derivative_checks.check_loss("mse", key=1.5), ValueError,
                 r"`key` must be a jax.random key.*pass it as fn\.derivative_checks\.check_loss\(\.\.\., key=",
                 id="bad-loss-key"),
    *[pytest.param(lambda check=check: check(jax.random.split(jax.random.key(0), 2)), ValueError,
                   rf"`key` must be a single jax.random key .*got a batch of keys of shape \(2,\); "
                   rf"fn\.derivative_checks\.{name} uses one key", id=f"{name}-batch-of-keys")
      for name, check in [("check_activation", lambda key: fn.derivative_checks.check_activation("relu", key=key)),
                          ("check_loss", lambda key: fn.derivative_checks.check_loss("mse", key=key)),
                          ("check_layer", lambda key: fn.derivative_checks.check_layer(fn.dense(2), 2, key=key))]],
    pytest.param(lambda: fn.derivative_checks.check_layer(wide_layer(), 3), ValueError,
                 r"layer 'wide': forward maps x of shape \(4, 3\) to shape \(4, 6\), expected "
                 r"\(batch, output_size\(n_in\)\) = \(4, 3\)", id="forward-wrong-width"),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_arguments_raise_errors_that_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
