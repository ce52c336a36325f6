"""Manual backprop vs jax.grad vs central finite differences, per layer and leaf.

For each hidden activation and each output/loss pairing, a random 3-layer
network is built and the three gradients compared in float64 (and manual vs
autodiff in float32).  The gradients that ``train_step`` and ``fit`` use, computed
in the first article's column-major layout (``funcnet.columns``), are compared
too.  Use ``fn.compare_grads(model, params, x, y)`` the same way on your own models.

Run: python examples/compare_grads.py
"""

import jax
import jax.numpy as jnp

import funcnet as fn
from funcnet import columns

jax.config.update("jax_enable_x64", True)

CASES = [
    ("relu", "identity", "mse"),
    ("tanh", "sigmoid", "logloss"),
    ("leaky_relu", "softmax", "cross_entropy"),
    ("sigmoid", "tanh", "mse"),
]


def random_problem(hidden, output, loss, dtype, seed=0):
    """A [6, 8, 8, 3] network with random params and a batch of 32 matching labels."""
    model = fn.mlp([6, 8, 8, 3], hidden=hidden, output=output, loss=loss)
    key_params, key_x, key_y = jax.random.split(jax.random.key(seed), 3)
    params = model.init(key_params, dtype)
    x = jax.random.normal(key_x, (32, 6), dtype)
    if loss == "cross_entropy":
        y = jax.random.randint(key_y, (32,), 0, 3)
    elif loss == "logloss":
        y = jax.random.bernoulli(key_y, 0.5, (32, 3)).astype(dtype)
    else:
        y = jax.random.normal(key_y, (32, 3), dtype)
    return model, params, x, y


def main():
    worst = {}
    for hidden, output, loss in CASES:
        model, params, x, y = random_problem(hidden, output, loss, jnp.float64)
        _, manual = model.manual_grad(params, x, y)
        autodiff = jax.grad(model.loss)(params, x, y)
        numeric = fn.finite_difference_grad(model, params, x, y)
        title = f"\n{hidden} hidden, {output} output, {loss} — float64"
        # what train_step and fit use: the same two gradients, computed column-major
        trained = {mode: columns.value_and_grad_fn(model, mode)(params, x, y)[1] for mode in fn.GRAD_MODES}
        for label, first, second in [("manual vs autodiff", manual, autodiff),
                                     ("manual vs finite differences", manual, numeric),
                                     ("autodiff vs finite differences", autodiff, numeric),
                                     ("train_step manual vs autodiff", trained["manual"], autodiff),
                                     ("train_step autodiff vs autodiff", trained["autodiff"], autodiff)]:
            rows = fn.compare_grad_trees(first, second)
            print(fn.format_differences(rows, f"{title}: {label}"))
            worst[label] = max(worst.get(label, 0.0), max(row.max_rel for row in rows))
        model32, params32, x32, y32 = random_problem(hidden, output, loss, jnp.float32)
        rows = fn.compare_grads(model32, params32, x32, y32)
        print(fn.format_differences(rows, f"{title[:-9]} — float32: manual vs autodiff"))
        worst["float32 manual vs autodiff"] = max(worst.get("float32 manual vs autodiff", 0.0),
                                                  max(row.max_rel for row in rows))
    print("\nlargest relative difference over all cases:")
    for label, value in worst.items():
        print(f"  {label:<34} {value:.2e}")


if __name__ == "__main__":
    main()
