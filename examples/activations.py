"""Each activation with its hand-written derivative, and jax.grad's derivative drawn over it.

The second article plots each activation; here each panel also shows the
derivative that manual backprop uses (thick line) and the one jax.grad
computes (dashed): they coincide.  Softmax is left out: its derivative is a
Jacobian, not a curve (tests check its vector-Jacobian product instead).

Run: python examples/activations.py [--out activations.png]   (needs funcnet[plot])
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import funcnet as fn


def activation_rows(negative_slope=0.1):
    """``(name, z, g(z), g'(z) by hand, g'(z) by jax.grad)`` for every elementwise activation."""
    z = jnp.linspace(-5, 5, 401)
    rows = []
    for name in [name for name in fn.activations.ACTIVATION_NAMES if name != "softmax"]:
        activation = fn.activations.get_activation(name, negative_slope)
        autodiff = jax.vmap(jax.grad(activation.apply))(z)
        rows.append((name, np.asarray(z), np.asarray(activation.apply(z)),
                     np.asarray(activation.derivative(z)), np.asarray(autodiff)))
    return rows


def plot_activations(rows, path):
    """Write a picture with one panel per activation (five to a row): ``g``, ``g'`` by hand, ``jax.grad``'s ``g'``.

    Args:
      rows: ``[(name, z, values, manual_derivative, autodiff_derivative), ...]``, arrays of one shape
        (:func:`activation_rows`).
      path: the image file, in the format its suffix names (``funcnet.plotting.image_format``).
    """
    from funcnet.plotting import headless_figure, image_format, save_figure

    image_format(path)  # a bad suffix is refused before anything is drawn
    columns = min(len(rows), 5)
    grid_rows = -(-len(rows) // columns)
    figure = headless_figure(width=3.2 * columns, height=3.0 * grid_rows)
    for index, (name, z, values, manual, autodiff) in enumerate(rows):
        axes = figure.add_subplot(grid_rows, columns, index + 1)
        axes.plot(z, values, label=f"{name}(z)")
        axes.plot(z, manual, label="derivative by hand", linewidth=3, alpha=0.5)
        axes.plot(z, autodiff, "--", label="jax.grad", color="black", linewidth=1)
        axes.set_title(name)
        axes.set_xlabel("z")
        axes.grid(True, alpha=0.3)
        if index == 0:
            axes.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="activations.png")
    args = parser.parse_args()
    rows = activation_rows()
    plot_activations(rows, args.out)
    for name, _, _, manual, autodiff in rows:
        print(f"{name:<11} max |hand-written - jax.grad| = {np.max(np.abs(manual - autodiff)):.2e}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
