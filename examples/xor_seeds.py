"""The first article's XOR network from 256 random seeds, trained in one compiled program.

Same network and schedule as examples/xor.py (2-3-1 tanh/sigmoid, log-loss,
SGD lr 0.1, 1500 full-batch epochs); ``fn.fit_many`` vmaps the training over
256 parameter sets.  How often does a 3-unit network solve XOR from a
random start?

Run: python examples/xor_seeds.py [--seeds 256] [--grad manual|autodiff]
"""

import argparse
import time

import jax
import numpy as np
import optax

import funcnet as fn


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--grad", default="manual", choices=("autodiff", "manual"))
    args = parser.parse_args()
    model = fn.mlp([2, 3, 1], hidden="tanh", output="sigmoid", loss="logloss")
    x, y = fn.xor_data()
    keys = jax.random.split(jax.random.key(0), args.seeds)
    start = time.perf_counter()
    params, _, histories = fn.fit_many(model, fn.stacked_init(model, keys), optax.sgd(0.1), x, y,
                                       epochs=1500, batch_size=4, keys=keys, grad=args.grad)
    seconds = time.perf_counter() - start
    outputs = np.asarray(jax.vmap(model.forward, in_axes=(0, None))(params, x))[:, :, 0]
    solved = np.all((outputs > 0.5) == (np.asarray(y)[:, 0] > 0.5), axis=1)
    final = np.array([history["train_loss"][-1] for history in histories])
    print(f"{args.seeds} XOR networks, 1500 epochs each, in one program: {seconds:.2f} s")
    print(f"solved XOR (all four outputs on the right side of 0.5): {solved.mean():.1%} "
          f"({solved.sum()} of {args.seeds})")
    print(f"final log-loss: min {final.min():.4f}, median {np.median(final):.4f}, max {final.max():.4f}; "
          f"10th-90th percentile {np.percentile(final, 10):.4f}-{np.percentile(final, 90):.4f}")
    if (~solved).any():
        print(f"the unsolved seeds end at a median log-loss of {np.median(final[~solved]):.4f}")


if __name__ == "__main__":
    main()
