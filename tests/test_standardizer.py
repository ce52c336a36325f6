"""Issue 21, cases 6, 10 and 12 (part): constant columns, low-precision inputs to apply, train_test_split's inputs."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import funcnet as fn
from cli_helpers import feature_rows, run, write_csv
from funcnet.data import (CONSTANT_COLUMN_ULPS, Standardizer, column_moments, split_count,
                          unit_in_last_place, varies_only_by_rounding)

FLOAT_DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]
INTEGER_DTYPES = [np.int8, np.uint8, np.int32, np.int64, np.uint64]


def with_varying_column(constant_column):
    """``(n, 2)``: the given column, then a column 0, 1, 2, ... that varies."""
    return np.column_stack([constant_column, np.arange(len(constant_column)).astype(constant_column.dtype)])


# --- case 6: a constant column, at any value, in any dtype, and one that varies only by rounding ---

@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("value", [0.0025, 0.1, 3.3, -7.0, 12345.678, 1e-30, 0.0])
@pytest.mark.parametrize("rows", [7, 40, 1000])
def test_a_constant_float_column_gets_its_value_as_mean_and_scale_one(dtype, value, rows):
    x = with_varying_column(np.full(rows, value).astype(dtype))
    standardizer = fn.fit_standardizer(x)
    assert standardizer.scale[0] == 1.0  # 0.0025 in 1000 float64 rows gave 4.2e-17: a rounding residue
    assert standardizer.mean[0] == float(x[0, 0])  # exactly the stored value, no summation residue
    assert np.asarray(standardizer.apply(x))[:, 0].tolist() == [0.0] * rows
    assert column_moments(x).constant.tolist() == [True, False]


@pytest.mark.parametrize("dtype", [*INTEGER_DTYPES, np.bool_], ids=lambda d: np.dtype(d).name)
def test_a_constant_integer_or_bool_column_gets_scale_one(dtype):
    x = with_varying_column(np.full(50, 1 if dtype is np.bool_ else 100).astype(dtype))
    standardizer = fn.fit_standardizer(x)
    assert standardizer.scale[0] == 1.0 and standardizer.mean[0] == float(x[0, 0])
    assert standardizer.scale[1] != 1.0


@pytest.mark.parametrize("column, dtype", [
    ([0.1 + 0.2, 0.3, 0.3, 0.3], np.float64),                                   # 0.30000000000000004 vs 0.3
    ([0.0025, np.nextafter(0.0025, 1.0), 0.0025], np.float64),
    ([np.float32(0.1), np.nextafter(np.float32(0.1), np.float32(1)), np.float32(0.1)], np.float32),
    ([1000.0, 1000.5, 1000.0], np.float16),                                     # adjacent float16 values
])
def test_a_column_that_varies_only_by_rounding_is_constant(column, dtype):
    x = with_varying_column(np.asarray(column, dtype))
    standardizer = fn.fit_standardizer(x)
    assert column_moments(x).constant.tolist() == [True, False]
    assert standardizer.scale[0] == 1.0
    assert np.abs(np.asarray(standardizer.apply(x.astype(np.float64)))[:, 0]).max() < 1e-2 * max(1, abs(column[0]))


@pytest.mark.parametrize("column", [
    [1.0, 1.0 + 1e-12, 1.0],                  # 4500 ulps: data, not rounding
    [1e-300, -1e-300, 3e-300],                # squares would underflow to 0
    [1e200, -1e200, 3e200],                   # squares would overflow to inf
    [2.0 ** 40, 2.0 ** 40 + 1, 2.0 ** 40],    # large whole numbers one apart
])
def test_a_column_that_really_varies_keeps_its_standard_deviation(column):
    x = np.asarray(column)[:, None]
    standardizer = fn.fit_standardizer(x)
    assert not column_moments(x).constant[0]
    scaled = x / np.abs(x).max()
    np.testing.assert_allclose(standardizer.scale[0], np.std(scaled) * np.abs(x).max(), rtol=1e-6)
    np.testing.assert_allclose(np.std(np.asarray(standardizer.apply(x))), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("magnitude", [1.0, 0.3, 1000.0, -2.5e-3, 6e4])
def test_the_constant_threshold_is_two_units_in_the_last_place_of_the_columns_own_dtype(dtype, magnitude):
    assert CONSTANT_COLUMN_ULPS == 2  # the docstrings state the rule with this number
    base = np.asarray(magnitude, dtype)
    outwards = np.asarray(np.inf if magnitude > 0 else -np.inf, dtype)
    steps = [base]  # base and the next three numbers of dtype away from 0
    for _ in range(3):
        steps.append(np.nextafter(steps[-1], outwards))
    within = np.array([steps[0], steps[2], steps[1]], dtype)[:, None]   # 2 ulps apart: rounding
    beyond = np.array([steps[0], steps[3], steps[1]], dtype)[:, None]   # 3 ulps apart: data
    assert column_moments(within).constant[0] and not column_moments(beyond).constant[0]
    assert unit_in_last_place(abs(float(steps[1])), dtype) == abs(float(steps[2]) - float(steps[1]))
    assert varies_only_by_rounding(*sorted([float(steps[0]), float(steps[2])]), dtype)
    assert not varies_only_by_rounding(*sorted([float(steps[0]), float(steps[3])]), dtype)


@pytest.mark.parametrize("rows", [160, 1000, 100_000])
def test_a_column_alternating_by_one_ulp_is_constant_at_any_row_count(rows):
    """The reviewer's case: 0.3 / 0.30000000000000004 got scale 6.4e-16 (the mean's residue beat 4 eps), and 0.31
    standardised to 1.56e13."""
    column = np.where(np.arange(rows) % 2 == 0, 0.3, 0.30000000000000004)
    x = np.stack([column, np.arange(float(rows))], 1)
    standardizer = fn.fit_standardizer(x)
    assert standardizer.scale[0] == 1.0 and standardizer.mean[0] == 0.3
    assert abs(float(np.asarray(standardizer.apply(np.array([[0.31, 0.0]])))[0, 0]) - 0.01) < 1e-15
    moments = column_moments(x)
    assert moments.constant.tolist() == [True, False]
    np.testing.assert_allclose(moments.std[0], 0.5 * (0.30000000000000004 - 0.3), rtol=1e-12)  # the true spread


def test_float16_years_two_apart_really_vary():
    """4 float16 eps of 2024 is 7.9, coarser than the years' spread: the old rule called them constant."""
    x = np.array([[2016, 2018, 2020, 2022, 2024] * 20], np.float16).T
    standardizer = fn.fit_standardizer(x)
    assert not column_moments(x).constant[0]
    assert standardizer.mean[0] == 2020.0
    np.testing.assert_allclose(standardizer.scale[0], np.sqrt(8.0), rtol=1e-12)
    assert np.asarray(standardizer.apply(x[:5]), np.float64).ravel().tolist() == pytest.approx(
        [-1.4142, -0.7071, 0.0, 0.7071, 1.4142], abs=1e-3)


def test_integer_columns_are_constant_only_when_every_value_is_equal():
    big = np.array([[2 ** 62], [2 ** 62 + 1], [2 ** 62]], np.int64)  # equal in float64, not as integers
    assert not column_moments(big).constant[0]
    assert column_moments(np.array([[2 ** 62]] * 3, np.int64)).constant[0]
    assert column_moments(np.array([[True], [True]])).constant[0]
    assert not column_moments(np.array([[True], [False]])).constant[0]


def test_extreme_columns_varying_by_rounding_are_constant_with_a_finite_spread():
    for value in (1e300, 1e-300, np.finfo(np.float64).max):
        column = np.array([value, np.nextafter(value, 0.0), value])
        moments = column_moments(column[:, None])
        assert moments.constant[0] and moments.mean[0] == column.min() and np.isfinite(moments.std[0])
    spanning = np.array([[np.finfo(np.float64).max], [-np.finfo(np.float64).max]])
    assert not column_moments(spanning).constant[0]


@pytest.mark.parametrize("x, names, error, message", [
    (np.array([[1 + 2j], [3 + 0j]]), None, TypeError, r"`x` must hold real numbers, got an array of complex128"),
    (np.array([["a"], ["b"]]), None, TypeError, r"`x` must hold real numbers, got an array of str"),
    (np.zeros((0, 2)), None, ValueError, r"`x` must have shape \(rows, features\) with at least one row, got \(0, 2\)"),
    (np.zeros(4), None, ValueError, r"`x` must have shape \(rows, features\) with at least one row, got \(4,\)"),
    (np.zeros((3, 2)), ["a"], ValueError, r"`names` must name each of the 2 columns of `x`, got 1 names"),
    (np.array([[1.0, 2.0], [np.nan, 1.0]]), ["a", "b"], ValueError,
     r"'a' of `x` has the value nan at row 1; standardisation needs finite values"),
])
def test_fit_standardizer_refuses_bad_input_by_name(x, names, error, message):
    with pytest.raises(error, match=message):
        fn.fit_standardizer(x, names=names)


def test_the_cli_notes_a_constant_column_and_predicts_the_same_for_rows_that_differ_only_there(tmp_path, capsys):
    rows = feature_rows(40)
    rows[:, 1] = 0.0025
    y = np.round(rows[:, 0] * 3 + 1, 4)
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"], np.column_stack([rows, y]).tolist())
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--layers", "4",
                         "--epochs", "1", "--save", tmp_path / "m.npz", "--quiet")
    assert status == 0, err
    assert ("note: constant feature column in the training rows: 'b' (0.0025 in every row); standardised "
            "with scale 1 (to about 0), so the model does not learn from it: a row with another value there gets a "
            "prediction that extrapolates (predict notes such rows)") in err.splitlines()
    saved = fn.load(tmp_path / "m.npz")
    assert saved.standardizer.scale[1] == 1.0 and saved.standardizer.mean[1] == 0.0025
    # the issue's report: 0.98 for b = 0.0025, -2.77e13 for b = 0.003 (std was a rounding residue of 1e-19)
    near = np.nextafter(0.0025, 1.0)
    write_csv(tmp_path / "new.csv", ["a", "b", "c"], [[0.5, 0.0025, -1.0], [0.5, near, -1.0], [0.5, 0.003, -1.0]])
    status, out, err = run(capsys, "predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "new.csv")
    assert status == 0, err
    predictions = [float(line) for line in out.splitlines()[1:]]
    assert predictions[0] == predictions[1]                     # differ by rounding only: equal
    assert abs(predictions[2] - predictions[0]) < 1e-2          # 0.003 enters as 0.0005, not as 5e15


def test_train_records_constant_columns_and_predict_notes_rows_that_differ_there(tmp_path, capsys):
    """k = 1e6 in every training row: k = 0 at predict time gave -751297.9 with no word (its weights never trained)."""
    rows = feature_rows(40)
    y = np.round(rows[:, 0] * 3 + 1, 4)
    write_csv(tmp_path / "d.csv", ["k", "a", "b", "c", "j", "y"],
              [[1e6, *row, 1 if i % 2 else 1.0, t] for i, (row, t) in enumerate(zip(rows.tolist(), y))])
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--layers", "4",
                         "--epochs", "1", "--save", tmp_path / "m.npz", "--quiet")
    assert status == 0, err
    assert ("constant feature columns in the training rows: 'k' (1000000.0 in every row), 'j' (1.0 in every row); "
            "standardised with scale 1 (to about 0), so the model does not learn from them") in err
    assert fn.load(tmp_path / "m.npz").config["constant_features"] == {"k": [1e6, 1e6], "j": [1.0, 1.0]}
    write_csv(tmp_path / "new.csv", ["c", "b", "a", "j", "k"],
              [[0.1, 0.2, 0.3, 1, "1e6"], [0.1, 0.2, 0.3, 1, 0], [0.1, 0.2, 0.3, 1, "1000000.0000000001"],
               [0.1, 0.2, 0.3, 1, 1000001]])
    status, out, err = run(capsys, "predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "new.csv")
    assert status == 0 and len(out.splitlines()) == 5
    assert err.splitlines() == [
        f"note: {tmp_path / 'new.csv'}: column 'k' was 1000000.0 in every training row; 2 rows here differ (first at "
        "line 3: 0): the model never learned from this column, so their predictions extrapolate"]
    status, _, err = run(capsys, "explain", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "new.csv",
                         "--target", "a", "--rows", "2")
    assert status == 0 and "column 'k' was 1000000.0 in every training row; 1 row here differs (first at line 3: 0)" \
        ": the model never learned from this column, so its prediction extrapolates" in err
    write_csv(tmp_path / "same.csv", ["a", "b", "c", "j", "k"], [[0.3, 0.2, 0.1, 1, 1e6]])
    status, _, err = run(capsys, "predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "same.csv")
    assert status == 0 and err == ""


def test_predict_with_a_checkpoint_without_the_constant_record_works(tmp_path, capsys):
    write_csv(tmp_path / "new.csv", ["a", "b", "c"], [[0.1, 0.2, 0.3]])
    checkpoint = "tests/fixtures/v1_cli_regression.npz"
    assert "constant_features" not in fn.load(checkpoint).config
    status, out, err = run(capsys, "predict", "--checkpoint", checkpoint, "--csv", tmp_path / "new.csv")
    assert status == 0 and len(out.splitlines()) == 2 and err == ""


def test_the_cli_notes_a_column_that_varies_only_by_rounding(tmp_path, capsys):
    rows = feature_rows(40).tolist()
    for i, row in enumerate(rows):
        row[2] = repr(0.1 + 0.2) if i % 2 else "0.3"
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"], [[*row, i / 7] for i, row in enumerate(rows)])
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--layers", "4",
                         "--epochs", "1", "--quiet", "--save", tmp_path / "m.npz")
    assert status == 0, err
    assert ("note: constant feature column in the training rows: 'c' (0.3 to 0.30000000000000004, varying only "
            "by rounding); standardised with scale 1") in err
    write_csv(tmp_path / "new.csv", ["a", "b", "c"], [[0.5, 0.5, 0.30000000000000004], [0.5, 0.5, 0.3],
                                                    [0.5, 0.5, 0.31]])
    status, out, err = run(capsys, "predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "new.csv")
    assert status == 0, err
    assert err.splitlines() == [
        f"note: {tmp_path / 'new.csv'}: column 'c' was 0.3 to 0.30000000000000004, varying only by rounding; 1 row "
        "here differs (first at line 4: 0.31): the model never learned from this column, so its prediction "
        "extrapolates"]
    predictions = [float(line) for line in out.splitlines()[1:]]
    assert predictions[0] == predictions[1] and abs(predictions[2] - predictions[0]) < 0.1  # 0.31 enters as 0.01


# --- case 10: apply never computes narrower than float32 ---

ISSUE_STANDARDIZER = Standardizer(np.array([2049.25]), np.array([1.0]))  # float16 holds 2049.25 as 2048


@pytest.mark.parametrize("make", [jnp.asarray, np.asarray, jax.jit(lambda x: x)], ids=["jax", "numpy", "jit"])
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_apply_to_low_precision_input_computes_in_float32_and_returns_its_dtype(make, dtype):
    x = make(np.array([[2048.0], [2064.0]], dtype))
    result = ISSUE_STANDARDIZER.apply(x)
    assert result.dtype == np.dtype(dtype)
    assert np.asarray(result, np.float64).ravel().tolist() == [-1.25, 14.75]  # float16 arithmetic: [0, 16]


def test_apply_under_jit_computes_in_float32_too():
    result = jax.jit(ISSUE_STANDARDIZER.apply)(jnp.array([[2048.0], [2052.0]], jnp.float16))
    assert result.dtype == jnp.float16 and np.asarray(result, np.float64).ravel().tolist() == [-1.25, 2.75]


@pytest.mark.parametrize("make", [jnp.asarray, np.asarray], ids=["jax", "numpy"])
def test_apply_to_integers_keeps_the_fractional_mean_and_returns_float32(make):
    result = ISSUE_STANDARDIZER.apply(make(np.array([[2048], [2052]], np.int32)))
    assert result.dtype == np.float32 and np.asarray(result).ravel().tolist() == [-1.25, 2.75]


def test_apply_keeps_float32_bits():
    """float32 input is computed exactly as before (float32 arithmetic with float32-rounded statistics)."""
    standardizer = fn.fit_standardizer(feature_rows(40))
    x = jnp.asarray(feature_rows(8, seed=1), jnp.float32)
    expected = (x - jnp.asarray(standardizer.mean, jnp.float32)[None, :]) / jnp.asarray(standardizer.scale,
                                                                                      jnp.float32)[None, :]
    np.testing.assert_array_equal(standardizer.apply(x), expected)


@pytest.mark.parametrize("x, error, message", [
    (np.ones((3, 2)), ValueError, r"`x` must have shape \(batch, 1\): the standardizer holds statistics for 1 "
                                  r"features; got shape \(3, 2\)"),
    (jnp.ones(3), ValueError, r"`x` must have shape \(batch, 1\).*got shape \(3,\)"),
    (np.ones((2, 1), np.complex64), TypeError, r"`x` must hold real numbers, got an array of complex64"),
    (jnp.ones((2, 1), jnp.complex64), TypeError, r"`x` must hold real numbers, got an array of complex64"),
    (np.array([["a"]]), TypeError, r"`x` must hold real numbers, got an array of str"),
])
def test_apply_refuses_bad_input_by_name(x, error, message):
    with pytest.raises(error, match=message):
        ISSUE_STANDARDIZER.apply(x)


# --- case 12 (part): train_test_split takes array-likes and says what is wrong ---

KEY = jax.random.key(0)
X_ROWS = [[float(i), float(-i)] for i in range(10)]
Y_ROWS = [[float(i)] for i in range(10)]


@pytest.mark.parametrize("convert", [list, tuple, np.asarray, jnp.asarray], ids=["list", "tuple", "numpy", "jax"])
def test_train_test_split_accepts_array_likes_and_splits_them_the_same_way(convert):
    parts = fn.train_test_split(KEY, convert(X_ROWS), convert(Y_ROWS), 0.3)
    reference = fn.train_test_split(KEY, np.asarray(X_ROWS), np.asarray(Y_ROWS), 0.3)
    assert [np.shape(part) for part in parts] == [(7, 2), (3, 2), (7, 1), (3, 1)]
    for part, expected in zip(parts, reference):
        np.testing.assert_array_equal(part, expected)
    assert sorted(np.concatenate([parts[2], parts[3]]).ravel().tolist()) == list(range(10))


def test_train_test_split_converts_a_data_frame_instead_of_selecting_its_columns():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(X_ROWS, columns=["a", "b"])
    x_train, x_test, _, _ = fn.train_test_split(KEY, frame, pandas.Series([row[0] for row in Y_ROWS]), 0.3)
    assert x_train.shape == (7, 2) and x_test.shape == (3, 2)


@pytest.mark.parametrize("x, y, fraction, error, message", [
    (X_ROWS, Y_ROWS[:8], 0.2, ValueError, r"`x` has 10 rows but `y` has 8 \(shape \(8, 1\)\); `x` and `y` need "
                                          r"one row per sample each"),
    (np.ones((10, 2)), jnp.ones(9), 0.2, ValueError, r"`x` has 10 rows but `y` has 9"),
    ([[1.0, 2.0], [3.0]], [1, 2], 0.2, ValueError, r"`x` must be an array of rows of equal length, got a list"),
    (X_ROWS, 5.0, 0.2, ValueError, r"`y` must have a rows axis \(shape \(n, \.\.\.\)\), got a scalar"),
    (X_ROWS, Y_ROWS, 1.0, ValueError, r"`test_fraction` must be in \[0, 1\), got 1.0"),
    (X_ROWS, Y_ROWS, -0.1, ValueError, r"`test_fraction` must be in \[0, 1\), got -0.1"),
    (X_ROWS, Y_ROWS, float("nan"), ValueError, r"`test_fraction` must be finite, got nan"),
    (X_ROWS, Y_ROWS, "0.2", TypeError, r"`test_fraction` must be a real number, got '0.2' \(str\)"),
    (X_ROWS, Y_ROWS, True, TypeError, r"`test_fraction` must be a real number, got True"),
    (X_ROWS, Y_ROWS, 0.999, ValueError, r"`test_fraction=0.999` of 10 rows leaves 10 held out and 0 for training"),
])
def test_train_test_split_refuses_bad_input_by_name(x, y, fraction, error, message):
    with pytest.raises(error, match=message):
        fn.train_test_split(KEY, x, y, fraction)


def test_train_test_split_names_a_bad_key():
    with pytest.raises(ValueError, match=r"`key` must be a jax.random key, got 0; .*train_test_split"):
        fn.train_test_split(0, X_ROWS, Y_ROWS)


@pytest.mark.parametrize("keys", [jax.random.split(KEY, 2), jax.random.split(jax.random.PRNGKey(0), 3),
                                  KEY[None]], ids=["typed", "raw", "typed-(1,)"])
@pytest.mark.parametrize("call, where", [
    (lambda key: fn.train_test_split(key, X_ROWS, Y_ROWS), "train_test_split"),
    (lambda key: fn.make_regression_data(key, 4), "make_regression_data"),
])
def test_one_key_data_helpers_refuse_a_batch_of_keys(keys, call, where):
    """A batch of keys was split as one (train_test_split) or failed deep inside: each uses exactly one key."""
    with pytest.raises(ValueError, match=rf"`key` must be a single jax.random key .*got a batch of keys of shape "
                                         rf"\({keys.shape[0]},?.*\); {where} uses one key"):
        call(keys)


@pytest.mark.parametrize("fraction", [np.float32(0.25), np.float64(0.25), 0.25, np.array(0.25)])
def test_any_real_fraction_type_is_accepted(fraction):
    assert split_count(8, fraction, "test_fraction") == 2
    assert fn.train_test_split(KEY, X_ROWS[:8], Y_ROWS[:8], fraction)[1].shape == (2, 2)


@pytest.mark.parametrize("count", [np.int64(3), np.int32(3), np.uint8(3), 3])
def test_data_helpers_take_every_integral_count(count):
    x, y = fn.make_regression_data(KEY, count)
    assert x.shape == (3, 5) and y.shape == (3, 1)


@pytest.mark.parametrize("call, error, message", [
    (lambda: fn.make_regression_data(KEY, 2.0), TypeError, r"`num_samples` must be an integer ≥ 1, got 2.0"),
    (lambda: fn.make_regression_data(KEY, True), TypeError, r"`num_samples` must be an integer ≥ 1, got the bool"),
    (lambda: fn.make_regression_data(KEY, 0), ValueError, r"`num_samples` must be an integer ≥ 1, got 0"),
    (lambda: fn.make_regression_data(KEY, 4, jnp.int32), TypeError,
     r"`dtype` must be a floating dtype such as jnp.float32, got int32"),
    (lambda: fn.make_regression_data(KEY, 4, "floaty"), TypeError, r"`dtype` must be a floating dtype"),
    (lambda: fn.make_regression_data(3, 4), ValueError, r"`key` must be a jax.random key, got 3"),
    (lambda: fn.xor_data(jnp.complex64), TypeError, r"`dtype` must be a real dtype such as jnp.float32, got complex64"),
    (lambda: fn.xor_data("nope"), TypeError, r"`dtype` must be a real dtype such as jnp.float32, got 'nope'"),
])
def test_data_helpers_refuse_bad_arguments_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()
