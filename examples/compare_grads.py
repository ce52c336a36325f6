"""Manual backprop vs jax.grad vs central finite differences, per layer and leaf.

For each hidden activation and each output/loss pairing, a random 3-layer
network is built and the three gradients compared in float64 (and manual vs
autodiff in float32); so is a layered network with gelu, layer norm, dropout
(same key in every mode), huber loss and an L2 penalty.  The gradients that
``train_step`` and ``fit`` use come from ``fn.value_and_grad_fn(model, mode)``:
``model.manual_grad`` and ``jax.value_and_grad(model.loss)`` themselves, so
they are compared too.  Use ``fn.compare_grads(model, params, x, y)`` the same
way on your own models.

Run: python examples/compare_grads.py
"""

import jax
import jax.numpy as jnp

import funcnet as fn

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


def random_problem(hidden, output, loss, dtype, seed=0):
    """A [6, 8, 8, 3] network (or ``LAYERED``) with random params and a batch of 32 matching labels."""
    model = LAYERED if hidden == "layers" else fn.mlp([6, 8, 8, 3], hidden=hidden, output=output, loss=loss)
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
        key = DROPOUT_KEY if model.needs_key else None
        # model.manual_grad and jax.grad(model.loss), side by side in one compiled call
        (_, manual), (_, autodiff) = fn.manual_and_autodiff(model, params, x, y, key=key)
        numeric = fn.finite_difference_grad(model, params, x, y, key=key)
        title = f"\n{hidden} hidden, {output} output, {loss} — float64"
        # what train_step and fit call: the same two functions
        trained = {mode: jax.jit(fn.value_and_grad_fn(model, mode))(params, x, y, key=key)[1]
                   for mode in fn.GRAD_MODES}
        for label, first, second in [("manual vs autodiff", manual, autodiff),
                                     ("manual vs finite differences", manual, numeric),
                                     ("autodiff vs finite differences", autodiff, numeric),
                                     ("train_step manual vs autodiff", trained["manual"], autodiff),
                                     ("train_step autodiff vs autodiff", trained["autodiff"], autodiff)]:
            rows = fn.compare_grad_trees(first, second)
            print(fn.format_differences(rows, f"{title}: {label}"))
            worst[label] = max(worst.get(label, 0.0), max(row.max_rel for row in rows))
        model32, params32, x32, y32 = random_problem(hidden, output, loss, jnp.float32)
        (_, manual32), (_, autodiff32) = fn.manual_and_autodiff(model32, params32, x32, y32, key=key)
        rows = fn.compare_grad_trees(manual32, autodiff32)
        print(fn.format_differences(rows, f"{title[:-9]} — float32: manual vs autodiff"))
        worst["float32 manual vs autodiff"] = max(worst.get("float32 manual vs autodiff", 0.0),
                                                  max(row.max_rel for row in rows))
    print("\nlargest relative difference over all cases:")
    for label, value in worst.items():
        print(f"  {label:<34} {value:.2e}")


if __name__ == "__main__":
    main()
