"""fit(sample_weight=..., class_weight=...): what each row weighs, and what a weight of 0 means."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet.fitting import row_weights

CLASSIFIER = fn.mlp([3, 5, 3], hidden="tanh", output="softmax", loss="cross_entropy")
BINARY = fn.mlp([3, 4, 1], hidden="tanh", output="sigmoid", loss="logloss")


def classes(rows=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    return x, np.argmax(x, axis=1)


def train(model, x, y, **weights):
    params = model.init(jax.random.key(0), jnp.float64)
    return fn.fit(model, params, optax.sgd(0.1), x, y, epochs=2, batch_size=8, key=jax.random.key(1),
                  **weights)[0]


def test_rows_of_zero_weight_do_not_influence_training():
    x, labels = classes()
    weights = np.where(np.arange(40) % 3 == 0, 0.0, 1.0)
    scrambled = np.where(weights == 0, (labels + 1) % 3, labels)  # other labels on the zero-weight rows
    first = train(CLASSIFIER, x, labels, sample_weight=weights)
    second = train(CLASSIFIER, x, scrambled, sample_weight=weights)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15), first, second)
    unweighted = train(CLASSIFIER, x, labels)
    assert not np.allclose(first[0]["W"], unweighted[0]["W"])


def test_unit_weights_train_like_no_weights():
    x, labels = classes()
    weighted = train(CLASSIFIER, x, labels, sample_weight=np.ones(40))
    plain = train(CLASSIFIER, x, labels)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), weighted, plain)


def test_balanced_class_weight_is_n_over_k_times_count():
    labels = np.array([0, 0, 0, 1, 2, 2])
    expected = 6 / (3 * np.array([3, 3, 3, 1, 2, 2]))
    np.testing.assert_allclose(row_weights(CLASSIFIER, labels, class_weight="balanced"), expected)


def test_class_weight_dict_multiplies_sample_weight_and_defaults_to_one():
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    weights = row_weights(BINARY, y, sample_weight=np.array([1.0, 2.0, 3.0, 4.0]), class_weight={1: 10.0})
    np.testing.assert_allclose(weights, [1.0, 20.0, 30.0, 4.0])


def test_class_weight_of_one_hot_labels_uses_the_argmax():
    one_hot = np.eye(3)[[0, 1, 1]]
    np.testing.assert_allclose(row_weights(CLASSIFIER, one_hot, class_weight={1: 5.0}), [1.0, 5.0, 5.0])


def test_class_weight_equals_the_same_sample_weight():
    x, labels = classes()
    by_class = train(CLASSIFIER, x, labels, class_weight="balanced")
    by_row = train(CLASSIFIER, x, labels, sample_weight=row_weights(CLASSIFIER, labels, class_weight="balanced"))
    jax.tree.map(np.testing.assert_array_equal, by_class, by_row)


@pytest.mark.parametrize("model, y, weights, message", [
    (CLASSIFIER, np.array([0, 1]), dict(class_weight="even"), r"`class_weight` must be a dict \{label: weight\} or 'balanced', got 'even'"),
    (CLASSIFIER, np.array([0, 1]), dict(class_weight=[1, 2]), r"`class_weight` must be a dict .* got list"),
    (CLASSIFIER, np.array([0, 1]), dict(class_weight={7: 2.0}), r"`class_weight` names labels \[7\] that are not in `y` \(labels: \[0, 1\]\)"),
    (fn.mlp([3, 1]), np.zeros((2, 1)), dict(class_weight="balanced"), r"`class_weight` needs a classifier .* loss is 'mse'"),
    (CLASSIFIER, np.array([0, 1]), dict(sample_weight=np.ones(3)), r"`sample_weight` has shape \(3,\); expected one weight per row, \(2,\)"),
    (CLASSIFIER, np.array([0, 1]), dict(sample_weight=np.array([1.0, -1.0])), r"`sample_weight` must be finite and non-negative"),
    (CLASSIFIER, np.array([0, 1]), dict(sample_weight=np.zeros(2)), r"with a positive sum"),
    (CLASSIFIER, np.array([0, 1]), dict(class_weight={0: 0.0, 1: 0.0}),
     r"`class_weight` \{0: 0.0, 1: 0.0\} gives every row weight 0 \(times `sample_weight`\); nothing would train"),
])
def test_bad_weights_are_rejected_by_name(model, y, weights, message):
    with pytest.raises(ValueError, match=message):
        row_weights(model, y, **weights)


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_a_batch_whose_weights_are_all_zero_is_skipped_not_trained_on_0_over_0(grad):
    """Weight on one row of 8, batches of 4: each epoch one batch holds data and the other none.

    The epoch must then be exactly one Adam step on that row alone (the empty batch changes neither the
    params nor Adam's moments and count), and its loss that row's loss.  Before, 0/0 made every param NaN.
    """
    x, labels = classes(rows=8)
    weights = np.zeros(8)
    weights[5] = 2.0
    params = CLASSIFIER.init(jax.random.key(0))
    optimizer = optax.adam(0.01)
    trained, history = fn.fit(CLASSIFIER, params, optimizer, x, labels, epochs=1, batch_size=4, grad=grad,
                              sample_weight=weights, key=jax.random.key(3))
    step = fn.make_train_step(CLASSIFIER, optimizer, grad)
    expected, _, loss = step(params, optimizer.init(params), x[5:6], labels[5:6])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7), trained, expected)
    np.testing.assert_allclose(history["train_loss"], [loss], rtol=1e-6)
