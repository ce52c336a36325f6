"""Weight initialisation: He for the ReLU family, Glorot for the rest, zero biases.

A layer's initialiser is chosen by the activation that follows it (hidden
layers by ``hidden``, the last layer by ``output``):

* He normal (relu, leaky_relu): ``W ~ N(0, 2 / n_in)`` keeps the variance of
  ReLU activations constant from layer to layer (He et al., 2015).
* Glorot uniform (identity, sigmoid, tanh, softmax):
  ``W ~ U(-r, r)`` with ``r = sqrt(6 / (n_in + n_out))`` (Glorot & Bengio, 2010).

Both are made from one draw of ``u ~ U(-1, 1)`` for all layers: Glorot is
``r · u`` and He is ``sqrt(2 / n_in) · √2 · erfinv(u)``, which is exactly how
``jax.random.normal`` makes normal samples.  One draw compiles one threefry
hash instead of one per layer (0.4 s of compile time each on CPU).

The articles use ``np.random.randn`` (first) and ``rand / 5 - 0.1`` with
bias 1 (second); we do not copy them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

HE_ACTIVATIONS = ("relu", "leaky_relu")


def he_normal(uniform: jax.Array, n_in: int) -> jax.Array:
    """``N(0, 2 / n_in)`` samples from ``uniform`` samples in ``(-1, 1)``: ``sqrt(2/n_in)·√2·erfinv(u)``."""
    return math.sqrt(2.0 / n_in) * math.sqrt(2.0) * jax.scipy.special.erfinv(uniform)


def glorot_uniform(uniform: jax.Array, n_in: int, n_out: int) -> jax.Array:
    """``U(-r, r)`` samples, ``r = sqrt(6 / (n_in + n_out))``, from ``uniform`` samples in ``(-1, 1)``."""
    return math.sqrt(6.0 / (n_in + n_out)) * uniform


def init_layers(key: jax.Array, sizes, activations, dtype=jnp.float32) -> list[dict]:
    """``[{"W": (n_in, n_out), "b": (n_out,)}, ...]`` for each layer and the activation after it."""
    shapes = list(zip(sizes[:-1], sizes[1:]))
    lowest = np.nextafter(np.array(-1, dtype), np.array(0, dtype))  # keeps erfinv finite
    uniform = jax.random.uniform(key, (sum(n_in * n_out for n_in, n_out in shapes),), dtype,
                                 minval=lowest, maxval=1.0)
    layers, offset = [], 0
    for (n_in, n_out), activation in zip(shapes, activations):
        draw = uniform[offset:offset + n_in * n_out].reshape(n_in, n_out)
        offset += n_in * n_out
        weights = he_normal(draw, n_in) if activation in HE_ACTIVATIONS else glorot_uniform(draw, n_in, n_out)
        layers.append({"W": weights, "b": jnp.zeros((n_out,), dtype)})
    return layers
