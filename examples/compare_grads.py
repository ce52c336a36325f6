"""Manual backprop vs jax.grad vs central finite differences, per layer and leaf.

For each hidden activation and each output/loss pairing, a random 3-layer
network is built and the three gradients compared in float64 (and manual vs
autodiff on the same problem rounded to float32); so is a layered network with
gelu, layer norm, dropout (same key in every mode), huber loss and an L2
penalty.  The gradients that ``train_step`` and ``fit`` use come from
``funcnet.engine.value_and_grad_fn(model, mode)``: ``model.manual_grad`` and
``jax.value_and_grad(model.loss)`` themselves, so they are compared too.  Use
``fn.gradcheck.compare_grads(model, params, x, y)`` the same way on your own models.

Each case is two jitted calls, so it compiles two programs rather than one per
function and dtype: ``random_problem`` draws the params and the batch, and
``case_gradients`` computes every gradient that is compared.

Run: python examples/compare_grads.py
"""

import functools

import jax
import jax.numpy as jnp

import funcnet as fn
from funcnet import engine  # internal: the gradient function train_step calls

jax.config.update("jax_enable_x64", True)

CASES = [
    ("relu", "identity", "mse"),
    ("tanh", "sigmoid", "logloss"),
    ("leaky_relu", "softmax", "cross_entropy"),
    ("sigmoid", "tanh", "mse"),
    ("layers", "identity", "huber"),
]
LAYERED = fn.sequential(6, [fn.dense(8, "gelu"), fn.layer_norm(), fn.dropout(0.25), fn.dense(8, "silu"),
                            fn.dense(3)], loss="huber", l2=1e-2)
DROPOUT_KEY = jax.random.key(7)


def build_model(hidden, output, loss):
    """A [6, 8, 8, 3] MLP, or ``LAYERED`` for ``hidden == "layers"``."""
    return LAYERED if hidden == "layers" else fn.mlp([6, 8, 8, 3], hidden=hidden, output=output, loss=loss)


@functools.partial(jax.jit, static_argnums=0)
def random_problem(model, key):
    """Random float64 params and a batch of 32 rows ``x (32, 6)`` with labels for the model's loss."""
    key_params, key_x, key_y = jax.random.split(key, 3)
    params = model.init(key_params, jnp.float64)
    x = jax.random.normal(key_x, (32, 6), jnp.float64)
    if model.loss_name == "cross_entropy":
        y = jax.random.randint(key_y, (32,), 0, 3)  # class ids
    elif model.loss_name == "logloss":
        y = jax.random.bernoulli(key_y, 0.5, (32, 3)).astype(jnp.float64)
    else:
        y = jax.random.normal(key_y, (32, 3), jnp.float64)
    return params, x, y


def in_float32(tree):
    """Every floating-point array of ``tree`` rounded to float32 (integer class ids stay as they are)."""
    return jax.tree.map(lambda a: a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


@functools.partial(jax.jit, static_argnums=0)
def case_gradients(model, params, x, y, dropout_key):
    """Every gradient of one problem, computed in one compiled call.

    Returns a dict of gradient trees shaped like params: float64 ``manual``,
    ``autodiff`` and ``finite differences``; the two functions ``train_step``
    uses (``train_step manual``, ``train_step autodiff``); and ``float32
    manual`` and ``float32 autodiff`` on the same problem rounded to float32.
    """
    (_, manual), (_, autodiff) = fn.gradcheck.manual_and_autodiff(model, params, x, y, key=dropout_key)
    gradients = {"manual": manual, "autodiff": autodiff,
                 "finite differences": fn.gradcheck.finite_difference_grad(model, params, x, y, key=dropout_key)}
    for mode in ("autodiff", "manual"):  # what train_step and fit call
        value_and_grad = engine.value_and_grad_fn(model, mode)
        gradients[f"train_step {mode}"] = value_and_grad(params, x, y, key=dropout_key)[1]
    (_, manual32), (_, autodiff32) = fn.gradcheck.manual_and_autodiff(model, *in_float32((params, x, y)),
                                                                      key=dropout_key)
    gradients.update({"float32 manual": manual32, "float32 autodiff": autodiff32})
    return gradients


COMPARISONS = [  # (label, first, second, dtype); finite differences go second (see fn.gradcheck.compare_grad_trees)
    ("manual vs autodiff", "manual", "autodiff", "float64"),
    ("manual vs finite differences", "manual", "finite differences", "float64"),
    ("autodiff vs finite differences", "autodiff", "finite differences", "float64"),
    ("train_step manual vs autodiff", "train_step manual", "autodiff", "float64"),
    ("train_step autodiff vs autodiff", "train_step autodiff", "autodiff", "float64"),
    ("float32 manual vs autodiff", "float32 manual", "float32 autodiff", "float32"),
]


def main():
    worst = {}
    for hidden, output, loss in CASES:
        model = build_model(hidden, output, loss)
        params, x, y = random_problem(model, jax.random.key(0))
        gradients = case_gradients(model, params, x, y, DROPOUT_KEY if model.needs_key else None)
        for label, first, second, dtype in COMPARISONS:
            rows = fn.gradcheck.compare_grad_trees(gradients[first], gradients[second])
            title = f"\n{hidden} hidden, {output} output, {loss} — {dtype}: {label.removeprefix('float32 ')}"
            print(fn.gradcheck.format_differences(rows, title))
            worst[label] = max(worst.get(label, 0.0), max(row.max_rel for row in rows))
    print("\nlargest relative difference over all cases:")
    for label, value in worst.items():
        print(f"  {label:<34} {value:.2e}")


if __name__ == "__main__":
    main()
