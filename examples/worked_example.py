"""The second article's step-by-step example, recomputed with funcnet's own backprop pieces.

Network: 1 input -> 2 ReLU units -> 1 linear output, five samples.
    x = [10, 20, -20, -40, -3],  y = [9, 13, 5, -2, -1]
    layer 1: W = [[.73, .2]], b = [4, 2];   layer 2: W = [[.4], [.1]], b = [4]

Part 1 reproduces the article's printed numbers.  Part 2 shows where the
article's recipe differs from the exact gradient of the mean squared error,
and that funcnet's manual backprop equals jax.grad there.

Run: python examples/worked_example.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import funcnet as fn
from funcnet import activations, losses

jax.config.update("jax_enable_x64", True)  # exact decimals for the printed comparison

X = jnp.array([[10.0], [20.0], [-20.0], [-40.0], [-3.0]])
Y = jnp.array([[9.0], [13.0], [5.0], [-2.0], [-1.0]])
PARAMS = [
    {"W": jnp.array([[0.73, 0.2]]), "b": jnp.array([4.0, 2.0])},
    {"W": jnp.array([[0.4], [0.1]]), "b": jnp.array([4.0])},
]
LEARNING_RATE = 1e-4


def worked_example():
    """Every number of the walk-through, as a dict of NumPy arrays."""
    layer1, layer2 = PARAMS
    hidden_linear, output_layer = fn.dense(2), fn.dense(1)  # identity activation: Z = X W + b
    # forward: Z1 = X W1 + b1, A1 = relu(Z1), output = A1 W2 + b2
    z1, _ = hidden_linear.forward(layer1, X, None)
    a1 = activations.relu(z1)
    output, output_cache = output_layer.forward(layer2, a1, None)
    # the article's "output gradient" is A - Y, the derivative of ½(A - Y)² per sample
    output_gradient = output - Y
    # the article's layer-2 gradients: dW = A1ᵀ dZ (a sum over the batch), db = mean(dZ);
    # dense's hand-written backward gives dW = A1ᵀ dZ, Σ dZ and dA1 = dZ W2ᵀ
    summed, article_a1_gradient_exact_weights = output_layer.backward(layer2, output_cache, output_gradient)
    article_b2_gradient = jnp.mean(output_gradient, axis=0)
    updated_w2 = layer2["W"] - LEARNING_RATE * summed["W"]
    # the article then propagates with the *updated* W2
    article_a1_gradient = output_gradient @ updated_w2.T
    article_z1_gradient = article_a1_gradient * activations.d_relu(z1)

    # exact gradients of L = mean((A - Y)²), by hand and by jax.grad
    model = fn.mlp([1, 2, 1], hidden="relu", output="identity", loss="mse")
    loss, manual = model.manual_grad(PARAMS, X, Y)
    autodiff = jax.grad(model.loss)(PARAMS, X, Y)
    return {
        "z1": z1, "a1": a1, "output": output,
        "squared_error": jnp.square(output - Y),
        "output_gradient": output_gradient,
        "article_w2_gradient": summed["W"],
        "article_b2_gradient": article_b2_gradient,
        "updated_w2": updated_w2,
        "article_a1_gradient": article_a1_gradient,
        "a1_gradient_with_forward_weights": article_a1_gradient_exact_weights,
        "article_z1_gradient": article_z1_gradient,
        "exact_output_delta": losses.d_squared_error(output, Y),
        "loss": loss,
        "manual": manual,
        "autodiff": autodiff,
    }


def show(name, value):
    print(f"{name}:\n{np.array2string(np.asarray(value), precision=8, suppress_small=True)}\n")


def main():
    numbers = worked_example()
    print("Part 1 — the article's numbers, with funcnet.dense_forward / dense_backward\n")
    for name in ["z1", "a1", "output", "squared_error", "output_gradient", "article_w2_gradient",
                 "article_b2_gradient", "updated_w2", "article_a1_gradient", "article_z1_gradient"]:
        show(name, numbers[name])
    print("Part 2 — where the article's recipe is not the gradient of its loss\n")
    print("1. A - Y is the gradient of ½(A - Y)² per sample. The mean squared error")
    print("   L = (1/m) Σ (A - Y)² has per-sample delta 2(A - Y) and a 1/m in dW and db:")
    show("exact per-sample output delta 2(A - Y)", numbers["exact_output_delta"])
    print("2. The article's weight gradient A1ᵀ(A - Y) is a sum over the batch, its bias")
    print("   gradient mean(A - Y) a mean: the two are scaled differently (by m = 5).")
    print(f"   article: dW2 = {np.asarray(numbers['article_w2_gradient']).ravel()}, "
          f"db2 = {np.asarray(numbers['article_b2_gradient'])}")
    manual, autodiff = numbers["manual"], numbers["autodiff"]
    print(f"   exact  : dW2 = {np.asarray(manual[1]['W']).ravel()}, db2 = {np.asarray(manual[1]['b'])}"
          f"  (= 2/m · A1ᵀ(A - Y) and 2 · mean(A - Y))\n")
    print("3. The article propagates to layer 1 through W2 *after* updating it; the chain")
    print("   rule needs the W2 of the forward pass. The difference is lr · dW2-sized:")
    show("   with updated W2 (article)", numbers["article_a1_gradient"])
    show("   with forward W2 (exact)", numbers["a1_gradient_with_forward_weights"])
    print("   (The article prints updated W2 = [[0.40171069], [0.09955278]], which its own")
    print(f"   gradient and lr 1e-4 do not give: W2 - lr·dW2 = {np.asarray(numbers['updated_w2']).ravel()}.)\n")
    print(f"Exact gradients of L = {float(numbers['loss']):.6f}: manual backprop vs jax.grad")
    print(fn.gradcheck.format_differences(fn.gradcheck.compare_grad_trees(manual, autodiff)))


if __name__ == "__main__":
    main()
