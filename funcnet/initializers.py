"""Weight initialisation: He for the ReLU family, Glorot for the rest, zero biases.

A dense layer's initialiser is chosen by the activation that follows it
(each :class:`~funcnet.activations.Activation` names one; an mlp's last layer
uses its output activation's):

* He normal (relu, leaky_relu, elu, gelu, softplus, silu): ``W ~ N(0, 2 / n_in)``
  keeps the variance of ReLU-like activations constant from layer to layer
  (He et al., 2015).
* Glorot uniform (identity, sigmoid, tanh, softmax, and your own by default):
  ``W ~ U(-r, r)`` with ``r = sqrt(6 / (n_in + n_out))`` (Glorot & Bengio, 2010).

Both are made from one draw of ``u ~ U(-1, 1)`` per layer: Glorot is
``r · u`` and He is ``sqrt(2 / n_in) · √2 · erfinv(u)``, which is exactly how
``jax.random.normal`` makes normal samples.

The articles use ``np.random.randn`` (first) and ``rand / 5 - 0.1`` with
bias 1 (second); we do not copy them.
"""

from __future__ import annotations

import math

import jax


def he_normal(uniform: jax.Array, n_in: int) -> jax.Array:
    """``N(0, 2 / n_in)`` samples from ``uniform`` samples in ``(-1, 1)``: ``sqrt(2/n_in)·√2·erfinv(u)``."""
    return math.sqrt(2.0 / n_in) * math.sqrt(2.0) * jax.scipy.special.erfinv(uniform)


def glorot_uniform(uniform: jax.Array, n_in: int, n_out: int) -> jax.Array:
    """``U(-r, r)`` samples, ``r = sqrt(6 / (n_in + n_out))``, from ``uniform`` samples in ``(-1, 1)``."""
    return math.sqrt(6.0 / (n_in + n_out)) * uniform
