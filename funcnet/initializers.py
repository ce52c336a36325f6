"""Weight initialisation: He for the ReLU family, Glorot for the rest, zero biases.

A layer's initialiser is chosen by the activation that follows it (hidden
layers by ``hidden``, the last layer by ``output``):

* He normal (relu, leaky_relu): ``W ~ N(0, 2 / n_in)`` keeps the variance of
  ReLU activations constant from layer to layer (He et al., 2015).
* Glorot uniform (identity, sigmoid, tanh, softmax):
  ``W ~ U(-r, r)`` with ``r = sqrt(6 / (n_in + n_out))`` (Glorot & Bengio, 2010).

The articles use ``np.random.randn`` (first) and ``rand / 5 - 0.1`` with
bias 1 (second); both are shown to train worse than these defaults on deeper
nets, so we do not copy them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

HE_ACTIVATIONS = ("relu", "leaky_relu")


def he_normal(key: jax.Array, n_in: int, n_out: int, dtype=jnp.float32) -> jax.Array:
    """``W ~ N(0, 2 / n_in)``, shape ``(n_in, n_out)``."""
    return jax.random.normal(key, (n_in, n_out), dtype) * jnp.sqrt(2.0 / n_in).astype(dtype)


def glorot_uniform(key: jax.Array, n_in: int, n_out: int, dtype=jnp.float32) -> jax.Array:
    """``W ~ U(-r, r)``, ``r = sqrt(6 / (n_in + n_out))``, shape ``(n_in, n_out)``."""
    limit = jnp.sqrt(6.0 / (n_in + n_out)).astype(dtype)
    return jax.random.uniform(key, (n_in, n_out), dtype, minval=-limit, maxval=limit)


def init_dense(key: jax.Array, n_in: int, n_out: int, activation: str, dtype=jnp.float32) -> dict:
    """One layer's parameters ``{"W": (n_in, n_out), "b": (n_out,)}`` for the activation that follows it."""
    init_weights = he_normal if activation in HE_ACTIVATIONS else glorot_uniform
    return {"W": init_weights(key, n_in, n_out, dtype), "b": jnp.zeros((n_out,), dtype)}
