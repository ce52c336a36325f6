"""Watch a classifier's decision boundary form: two moons, a 2-16-16-1 tanh network, panels over epochs.

The two interleaved half circles ("two moons") are drawn here with NumPy:
class 0 on the upper arc ``(cos t, sin t)``, class 1 on the lower arc
``(1 − cos t, ½ − sin t)``, ``t ~ U(0, π)``, plus Gaussian noise.  A
2-16-16-1 tanh network with a sigmoid output and log-loss trains on them with
Adam (hand-written backprop), and after chosen epochs the predicted
``P(class 1)`` over the plane is drawn with :func:`funcnet.plots.plot_decision_boundary`
into one panel of a grid: at epoch 0 the random network splits the plane
almost linearly, by the end the boundary winds between the moons.

Run: python examples/decision_boundary.py [--epochs 100] [--out decision_boundary.png]
"""

import argparse

import jax
import numpy as np
import optax
from matplotlib.figure import Figure

import funcnet as fn
from funcnet.decision_boundary import plot_decision_boundary
from funcnet.plotting import image_format, save_figure


def make_moons(num_samples=400, noise=0.15, seed=0):
    """Two interleaved half circles: ``x`` (n, 2) float32 and labels ``y`` (n, 1) in {0, 1}."""
    rng = np.random.default_rng(seed)
    upper, lower = num_samples // 2, num_samples - num_samples // 2
    angles_upper = rng.uniform(0.0, np.pi, upper)
    angles_lower = rng.uniform(0.0, np.pi, lower)
    x = np.concatenate([np.stack([np.cos(angles_upper), np.sin(angles_upper)], axis=1),
                        np.stack([1.0 - np.cos(angles_lower), 0.5 - np.sin(angles_lower)], axis=1)])
    x += noise * rng.normal(size=x.shape)
    y = np.concatenate([np.zeros(upper), np.ones(lower)]).reshape(-1, 1)
    return x.astype(np.float32), y.astype(np.float32)


def train_with_snapshots(x, y, epochs=100, snapshot_epochs=(0, 2, 5, 10, 30, 100), seed=0):
    """Fit the network; returns ``(model, {epoch: params})`` for each snapshot epoch up to ``epochs``."""
    model = fn.mlp([2, 16, 16, 1], hidden="tanh", output="sigmoid", loss="logloss")
    init_key, fit_key = jax.random.split(jax.random.key(seed))
    params = model.init(init_key)
    snapshots = {0: params}
    wanted = {epoch for epoch in snapshot_epochs if 0 < epoch <= epochs} | {epochs}

    def keep_snapshot(epoch, params, opt_state, history):
        """``epoch`` counts from 0, so the params after it are those of epoch ``epoch + 1``."""
        if epoch + 1 in wanted:
            snapshots[epoch + 1] = params

    fn.fit(model, params, optax.adam(0.01), x, y, epochs=epochs, batch_size=32, key=fit_key, grad="manual",
           callback=keep_snapshot)
    return model, snapshots


def accuracy(model, params, x, y):
    """Fraction of rows whose predicted class (``P(class 1) > 0.5``) is the label."""
    return float(np.mean(np.asarray(fn.predict_labels(model, params, x)) == y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", default="decision_boundary.png",
                        help="the image to write (.png, .jpg, .pdf, .svg...: the suffix picks the format)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        image_format(args.out, "--out")  # before training
    except ValueError as error:
        parser.error(str(error))
    x, y = make_moons(seed=args.seed)
    model, snapshots = train_with_snapshots(x, y, args.epochs, seed=args.seed)

    columns = 3
    rows = -(-len(snapshots) // columns)
    figure = Figure(figsize=(3.6 * columns, 3.4 * rows), dpi=100)  # no pyplot: renders without a display
    print(f"two moons, {len(x)} points, {model.describe()}, adam 0.01, batch 32")
    for index, epoch in enumerate(sorted(snapshots)):
        params = snapshots[epoch]
        train_accuracy = accuracy(model, params, x, y)
        loss = fn.evaluate(model, params, x, y)
        print(f"epoch {epoch:4d}: log-loss {loss:.4f}, accuracy {train_accuracy:.3f}")
        axes = figure.add_subplot(rows, columns, index + 1)
        plot_decision_boundary(model, params, x, y, ax=axes, resolution=150,
                               title=f"epoch {epoch}: accuracy {train_accuracy:.2f}")
    figure.suptitle("two moons: P(class 1) from blue (0) to red (1), black line at 0.5")
    figure.tight_layout()
    save_figure(figure, args.out)
    print(f"final accuracy: {accuracy(model, snapshots[max(snapshots)], x, y):.3f}")
    print(f"wrote {len(snapshots)} panels to {args.out}")


if __name__ == "__main__":
    main()
