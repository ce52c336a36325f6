"""The first article's XOR network: 2-3-1, tanh then sigmoid, log-loss, SGD lr 0.1, 1500 epochs.

The article loops over ``Layer`` objects that update themselves; here the
same network is a pure function of a params pytree, the hand-written
backprop computes the gradients and optax's SGD applies them, one jitted
``train_step`` per full-batch epoch.

Run: python examples/xor.py [--grad manual|autodiff] [--seed N]
"""

import argparse

import jax
import numpy as np
import optax

import funcnet as fn


def train_xor(grad="manual", seed=0, epochs=1500, learning_rate=0.1):
    """Train the article's network; returns ``(model, params, losses)``."""
    model = fn.mlp([2, 3, 1], hidden="tanh", output="sigmoid", loss="logloss")
    x, y = fn.xor_data()
    params = model.init(jax.random.key(seed))
    optimizer = optax.sgd(learning_rate)
    train_step = fn.make_train_step(model, optimizer, grad=grad)
    opt_state = optimizer.init(params)
    losses = []
    for _ in range(epochs):
        params, opt_state, loss = train_step(params, opt_state, x, y)
        losses.append(loss)
    return model, params, np.asarray(jax.device_get(losses))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grad", default="manual", choices=("autodiff", "manual"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, params, losses = train_xor(args.grad, args.seed)
    x, y = fn.xor_data()
    predictions = np.asarray(model.forward(params, x))
    print(f"XOR, 2-3-1 tanh/sigmoid, log-loss, SGD lr 0.1, 1500 epochs, grad={args.grad}")
    print(f"loss: first epoch {losses[0]:.4f}, epoch 10 {losses[9]:.4f}, epoch 100 {losses[99]:.4f}, "
          f"last {losses[-1]:.4f}")
    print(" x1 x2 | target | prediction")
    for (x1, x2), target, prediction in zip(np.asarray(x), np.asarray(y)[:, 0], predictions[:, 0]):
        print(f"  {x1:.0f}  {x2:.0f} |   {target:.0f}    | {prediction:.4f}")
    solved = bool(np.all((predictions > 0.5) == (np.asarray(y) > 0.5)))
    print(f"solved (every output on the right side of 0.5): {solved}")


if __name__ == "__main__":
    main()
