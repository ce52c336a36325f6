"""Time spans and dates are not data (round 2 of issue 21, case 16): NumPy counts timedelta64 among the integer
types, so it passed ``checks.check_real_dtype`` and failed later with a raw ``float() argument must be...``.
Every entry point that takes data now refuses it, and datetime64, by the argument's name."""

import jax
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet import checks
from test_argument_types import MODEL, PARAMS, X, Y, refuses

TIMES = [  # (a time version of an array, what the message calls it)
    pytest.param(lambda a: a.astype(np.int64).astype("timedelta64[s]"), r"timedelta64\[s\]: time spans "
                 r"\(timedelta64\)", id="timedelta-s"),
    pytest.param(lambda a: a.astype(np.int64).astype("timedelta64[ns]"), r"timedelta64\[ns\]: time spans",
                 id="timedelta-ns"),
    pytest.param(lambda a: a.astype(np.int64).astype("timedelta64"), r"timedelta64: time spans", id="timedelta"),
    pytest.param(lambda a: a.astype(np.int64).astype("datetime64[D]"), r"datetime64\[D\]: dates and times "
                 r"\(datetime64\)", id="datetime-D"),
    pytest.param(lambda a: a.astype(np.int64).astype("timedelta64[s]").tolist(), r"object; expected real",
                 id="list-of-timedelta"),
]
MESSAGE = "^`{{name}}` has dtype {}"


@pytest.mark.parametrize("to_time, found", TIMES)
@pytest.mark.parametrize("entry", ["predict", "evaluate", "fit", "fit_many", "forward", "finite_difference_grad"])
def test_time_spans_and_dates_are_refused_as_x(entry, to_time, found):
    x = to_time(X)
    calls = {
        "predict": lambda: fn.predict(MODEL, PARAMS, x),
        "evaluate": lambda: fn.evaluate(MODEL, PARAMS, x, Y),
        "fit": lambda: fn.fit(MODEL, PARAMS, optax.sgd(0.1), x, Y, epochs=1, key=jax.random.key(0)),
        "fit_many": lambda: fn.fit_many(MODEL, fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 2)),
                                        optax.sgd(0.1), x, Y, epochs=1, key=jax.random.key(0)),
        "forward": lambda: MODEL.forward(PARAMS, x),
        "finite_difference_grad": lambda: fn.gradcheck.finite_difference_grad(MODEL, PARAMS, x, Y),
    }
    refuses("x", MESSAGE.format(found), calls[entry])


@pytest.mark.parametrize("to_time, found", TIMES)
def test_time_spans_and_dates_are_refused_as_y_and_weights(to_time, found):
    refuses("y", MESSAGE.format(found),
            lambda: fn.fit(MODEL, PARAMS, optax.sgd(0.1), X, to_time(Y), epochs=1, key=jax.random.key(0)))
    refuses("y", MESSAGE.format(found), lambda: MODEL.loss(PARAMS, X, to_time(Y)))
    refuses("weights", MESSAGE.format(found), lambda: MODEL.loss(PARAMS, X, Y, to_time(np.ones(8))))


def test_the_message_says_how_to_turn_time_spans_into_numbers():
    refuses("x", r"; expected real numbers \(a bool, integer or floating array\)\. Convert it to numbers in a unit "
                 r"first, e.g\. x / np\.timedelta64\(1, 's'\) for seconds$",
            lambda: fn.predict(MODEL, PARAMS, X.astype(np.int64).astype("timedelta64[ms]")))
    seconds = X.astype(np.int64).astype("timedelta64[ms]") / np.timedelta64(1, "s")  # the advice works
    assert np.asarray(fn.predict(MODEL, PARAMS, seconds)).shape == (8, 1)


@pytest.mark.parametrize("value", [np.timedelta64(5, "s"), np.datetime64("2020-01-01"), np.array(3, "timedelta64[ms]")],
                         ids=["timedelta", "datetime", "0-d timedelta array"])
def test_a_time_span_is_not_a_real_parameter(value):
    with pytest.raises(checks.ArgumentTypeError, match=r"`delta` must be a real number, got .*(timedelta|datetime)64"):
        fn.losses.huber(value)
