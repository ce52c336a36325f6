"""A backprop trace, step by step: every Z, A, dZ, dW, db by hand and by jax.grad.

1. The second article's worked example (1-2-1 ReLU, inputs 10, 20, -20, -40, -3),
   printed as the article walks through it.
2. A network of every layer kind, traced on three rows: the two columns agree to float64.
3. A layer of your own with a bug in its hand-written backward: the trace says where.

Same as the first part: funcnet explain --example article

Run: python examples/trace.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import funcnet as fn
from funcnet.trace import trace_backprop, worked_example_network

jax.config.update("jax_enable_x64", True)  # the two columns agree to ~1e-16 in float64


def article():
    model, params, x, y = worked_example_network()
    return trace_backprop(model, params, x, y)


def every_layer_kind():
    model = fn.sequential(3, [fn.dense(4, "gelu"), fn.layer_norm(), fn.dropout(0.25), "tanh", fn.dense(2)],
                          loss="cross_entropy", l2=1e-3)
    params = model.init(jax.random.key(0), jnp.float64)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 3)))
    return trace_backprop(model, params, x, jnp.array([0, 1, 1]), key=jax.random.key(1))


def buggy_layer():
    # y = x ⊙ s; the backward forgets s in dx (it should be dy ⊙ s)
    scale = fn.layer("scale", lambda key, n, dtype: {"s": jnp.full((n,), 0.5, dtype)},
                     lambda p, x: (x * p["s"][None, :], x),
                     lambda p, x, dy: ({"s": jnp.sum(dy * x, 0)}, dy))
    model = fn.sequential(2, [fn.dense(3, "relu"), scale, fn.dense(1)])
    params = model.init(jax.random.key(0), jnp.float64)
    x, y = fn.xor_data(jnp.float64)
    return trace_backprop(model, params, x, y)


def main():
    print("1. The second article's worked example\n")
    print(article())
    print("\n\n2. Every layer kind (dense, layer_norm, dropout with a key, an activation layer), l2 1e-3\n")
    print(every_layer_kind().format(precision=3, max_rows=3))
    print("\n\n3. A layer of your own whose backward forgets a factor\n")
    trace = buggy_layer()
    layer, quantity = trace.first_difference()
    print(f"first difference: {quantity.label} in layer {layer.index + 1} ({layer.description}): "
          f"relative {quantity.max_rel:.2f}")
    print(f"  {quantity.equation}")
    row = int(np.argmax(np.max(np.abs(quantity.manual - quantity.autodiff), axis=1)))
    print(f"  manual  : {np.array2string(quantity.manual[row], precision=4)}   (row {row + 1})")
    print(f"  autodiff: {np.array2string(quantity.autodiff[row], precision=4)}   (= dY ⊙ s, s = 0.5)")


if __name__ == "__main__":
    main()
