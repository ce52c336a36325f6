"""Your own activation: write g and g', let a derivative check catch a wrong g', then train with it.

Mish (Misra 2019) is ``g(z) = z tanh(softplus z)``.  With ``sp = softplus z``
and ``softplus' = σ``, its derivative is

    g'(z) = tanh(sp) + z (1 − tanh² sp) σ(z)

A common slip is to forget the chain rule through softplus and write
``tanh(sp) + z (1 − tanh² sp)``.  Manual backprop would use that silently,
while ``grad="autodiff"`` (which differentiates ``g`` itself) would not: the
two modes would train differently.  ``fn.derivative_checks.check_activation`` compares ``g'``
with ``jax`` and with central finite differences in float64 and names the
wrong part.  With the right ``g'`` both modes train to the same loss.

Run: python examples/custom_activation.py
"""

import jax
import jax.numpy as jnp
import optax

import funcnet as fn


def mish(z):
    """``z tanh(softplus z)``."""
    return z * jnp.tanh(jax.nn.softplus(z))


def d_mish_wrong(z):
    """The slip: the chain rule through softplus is missing its ``σ(z)``."""
    t = jnp.tanh(jax.nn.softplus(z))
    return t + z * (1 - t) * (1 + t)


def d_mish(z):
    """``tanh(sp) + z (1 − tanh² sp) σ(z)``."""
    t = jnp.tanh(jax.nn.softplus(z))
    return t + z * (1 - t) * (1 + t) * jax.nn.sigmoid(z)


def train_xor(activation, grad, epochs=300):
    """A 2-8-1 network with ``activation`` on its hidden layer, trained on XOR; returns the last epoch's loss."""
    model = fn.mlp([2, 8, 1], hidden=activation, output="sigmoid", loss="logloss")
    x, y = fn.xor_data()
    params = model.init(jax.random.key(0))
    _, history = fn.fit(model, params, optax.adam(0.05), x, y, epochs=epochs, batch_size=4,
                        key=jax.random.key(1), grad=grad)
    return history["train_loss"][-1]


def main():
    print("1. mish with a wrong derivative:")
    wrong = fn.derivative_checks.check_activation(fn.activation("mish", mish, d_mish_wrong))
    print(wrong)
    print(f"   ok: {wrong.ok}, wrong parts: {wrong.failures}\n")

    print("2. mish with the right derivative:")
    right = fn.activation("mish", mish, d_mish)
    report = fn.derivative_checks.check_activation(right)
    print(report)
    print(f"   ok: {report.ok}\n")

    print("3. XOR, 2-8(mish)-1 → sigmoid, log-loss, Adam 0.05, 300 epochs:")
    losses = {grad: train_xor(right, grad) for grad in ("autodiff", "manual")}
    for grad, loss in losses.items():
        print(f"   grad={grad:<8}  final loss {loss:.6f}")
    print(f"   |manual − autodiff| = {abs(losses['manual'] - losses['autodiff']):.1e}")


if __name__ == "__main__":
    main()
