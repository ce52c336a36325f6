"""16 Adam learning rates on the second article's regression, trained in one compiled program.

The learning rate lives in the optimizer state (``optax.inject_hyperparams``),
so ``fn.fit_many`` can vmap over it: 16 models, same initial params, one rate
each.  One shared ``key`` gives all of them the same data split and batches,
a fair comparison, and the shuffling is done once for all 16.

Run: python examples/lr_sweep.py [--epochs 10]
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import optax

import funcnet as fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from regression import prepare_data  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    x_train, x_test, y_train, y_test = prepare_data()
    model = fn.mlp([5, 10, 10, 1])
    rates = jnp.logspace(-4, -0.5, 16)
    same_init = jnp.stack([jax.random.key(0)] * len(rates))
    params = fn.stacked_init(model, same_init)
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    states = fn.with_hyperparam(jax.vmap(optimizer.init)(params), "learning_rate", rates)
    start = time.perf_counter()
    params, _, histories = fn.fit_many(model, params, optimizer, x_train, y_train, epochs=args.epochs,
                                       batch_size=64, key=jax.random.key(1),
                                       validation_split=0.2, opt_state=states, grad="manual")
    seconds = time.perf_counter() - start
    print(f"{len(rates)} learning rates x {args.epochs} epochs on 64,000 rows in one program: {seconds:.2f} s")
    print(f"{'learning rate':>14} {'final val MSE':>14}")
    finals = [history["val_loss"][-1] for history in histories]
    for rate, final in zip(rates.tolist(), finals):
        print(f"{rate:>14.2e} {final:>14.2f}")
    best = min(range(len(rates)), key=lambda i: finals[i])
    single = jax.tree.map(lambda leaf: leaf[best], params)
    print(f"best: lr {float(rates[best]):.2e}, val MSE {finals[best]:.2f}, "
          f"test MSE {fn.evaluate(model, single, x_test, y_test):.2f}")


if __name__ == "__main__":
    main()
