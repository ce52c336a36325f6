"""The XLA compile options of a training epoch compiled at top level (the scikit-learn estimators').

One option, on CPU only: ``xla_cpu_prefer_vector_width = 512`` bits.
XLA:CPU has LLVM vectorise the loops it generates for 256-bit registers by
default.  That is every fusion that is not a library matmul: the shuffle's
swap-or-not rounds, activations, losses, the optimizer's update.  The 256-bit
default protects older Intel CPUs, whose clock drops under 512-bit
instructions.  Measured on one pinned AMD EPYC core with AVX-512
(``BENCHMARKS.md``), 512 bits make:

* the permutation of 80,000 rows take 0.25 ms instead of 0.45 ms, with the
  same bits;
* the scikit-learn benchmark's epoch 0.36-0.39 ms faster (of ~9.8 ms).

The float32 matmul floor of that benchmark gets no faster: its time is in
the matmul library.  Integer results (the permutation) are bit-identical.
Float results may differ in the last bits, because a sum vectorised 16 wide
adds in another order than one 8 wide.  Each width is still deterministic,
run to run.  Compiled for an AVX2-only CPU (``xla_cpu_max_isa=AVX2``), the
option still compiles, runs and gives the same permutation.

Only a top-level ``jax.jit`` may carry compile options.  JAX refuses them on
a jit that runs inside another one, so :func:`funcnet.engine.make_train_epoch`,
which users and ``fit_many`` nest, is compiled with XLA's defaults; the
estimators compile the same epoch function
(:func:`funcnet.engine.epoch_function`) with these options
(:func:`funcnet.engine.compiled_epoch` with ``top_level=True``).  ``fit``
keeps XLA's defaults too, so that its results are the bits of
``make_train_epoch``, ``fit_many`` and of earlier versions (the 512-bit
program's sums round differently in the last bits).

``FUNCNET_CPU_VECTOR_WIDTH`` (``128``, ``256`` or ``512``) overrides the width.
``256`` is XLA's default.  It is read when an epoch program is built (not
when anything is traced), and those programs are cached, so set it before
the first fit.  (``FUNCNET_DENSE_LAYOUT`` is read earlier still, when a
dense layer is built: :func:`funcnet.layers.default_dense_layout`.)
"""

from __future__ import annotations

import os

import jax

VECTOR_WIDTH_VARIABLE = "FUNCNET_CPU_VECTOR_WIDTH"
DEFAULT_CPU_VECTOR_WIDTH = 512
CPU_VECTOR_WIDTHS = (128, 256, 512)


def cpu_vector_width() -> int:
    """The vector width, in bits, the estimators' epoch asks LLVM for on CPU (see the module docstring)."""
    text = os.environ.get(VECTOR_WIDTH_VARIABLE, "").strip()
    if not text:
        return DEFAULT_CPU_VECTOR_WIDTH
    if text not in {str(width) for width in CPU_VECTOR_WIDTHS}:
        raise ValueError(f"{VECTOR_WIDTH_VARIABLE} must be one of 128, 256 or 512 (bits), got {text!r}")
    return int(text)


def epoch_compiler_options() -> dict | None:
    """``jax.jit``'s ``compiler_options`` for a compiled training epoch that is never nested in another jit.

    On CPU, ``{"xla_cpu_prefer_vector_width": cpu_vector_width()}``. On other
    backends, ``None`` (XLA's defaults).
    """
    if jax.default_backend() != "cpu":
        return None
    return {"xla_cpu_prefer_vector_width": cpu_vector_width()}
