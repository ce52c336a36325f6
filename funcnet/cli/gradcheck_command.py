"""``funcnet gradcheck``: manual backprop vs ``jax.grad`` vs finite differences, in float64."""

from __future__ import annotations

from funcnet.cli.checkpoints import load_checkpoint
from funcnet.cli.interrupts import SIGNALS

MANUAL_AUTODIFF_RTOL = 1e-8  # in float64: the two differ only by rounding


def run_gradcheck(args) -> int:
    """``funcnet gradcheck``: print the per-leaf table of max relative differences.

    Returns 0 when manual backprop and ``jax.grad`` agree, every leaf's max relative difference
    (:func:`funcnet.finite_differences.max_difference`) at most :data:`MANUAL_AUTODIFF_RTOL`, else 1
    (a NaN difference fails, and is printed as the largest).  It runs
    inside ``jax.enable_x64(True)``, which is switched back afterwards, so a
    caller's float32 mode is left as it was.  A Ctrl-C or SIGTERM is acted on
    between the three computations and before the table is printed
    (:mod:`~funcnet.cli.interrupts`), never inside XLA.
    """
    import jax

    from funcnet.cli.errors import UserError

    if args.batch < 1:
        raise UserError(f"--batch must be at least 1 (random rows to check on), got {args.batch}")
    with jax.enable_x64(True):
        return _gradcheck_table(args)


def _gradcheck_table(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import funcnet as fn
    from funcnet.finite_differences import passes
    from funcnet.gradcheck import compare_grad_trees, finite_difference_grad, manual_and_autodiff

    SIGNALS.check()  # a signal during the imports
    if args.checkpoint:
        saved = load_checkpoint(args.checkpoint)
        model = saved.model
        params = jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.float64), saved.params)
    else:
        sizes = [2, 3, 1] if args.data == "xor" else [5, 10, 10, 1]
        model = (fn.mlp(sizes, hidden="tanh", output="sigmoid", loss="logloss") if args.data == "xor"
                 else fn.mlp(sizes))
        params = model.init(jax.random.key(args.seed), jnp.float64)
    rng = np.random.default_rng(args.seed)
    x = jnp.asarray(rng.normal(size=(args.batch, model.sizes[0])))
    k = model.sizes[-1]
    if model.loss_name == "cross_entropy":
        y = jnp.asarray(rng.integers(0, k, size=args.batch))
    elif model.loss_name == "logloss":
        y = jnp.asarray(rng.integers(0, 2, size=(args.batch, k)), jnp.float64)
    else:
        y = jnp.asarray(rng.normal(size=(args.batch, k)))
    key = jax.random.key(args.seed) if model.needs_key else None  # one dropout mask for all three
    (_, manual), (_, autodiff) = manual_and_autodiff(model, params, x, y, key=key)
    SIGNALS.check()
    numeric = finite_difference_grad(model, params, x, y, key=key)
    rows = list(zip(compare_grad_trees(manual, autodiff), compare_grad_trees(manual, numeric),
                    compare_grad_trees(autodiff, numeric)))
    evaluated = sum(int(np.sum(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree.leaves(numeric))
    total = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(numeric))
    SIGNALS.check()  # the last safe point: the table is printed whole
    print(f"model {model.describe()}; float64, {args.batch} random rows; max relative differences "
          f"(finite differences at {evaluated} of {total} coordinates)")
    print(f"{'layer':>5} {'leaf':>5} {'shape':>12} {'manual-autodiff':>16} {'manual-finite':>14} {'autodiff-finite':>16}")
    for first, second, third in rows:
        print(f"{first.layer:>5} {first.leaf:>5} {str(first.shape):>12} {first.max_rel:>16.2e} "
              f"{second.max_rel:>14.2e} {third.max_rel:>16.2e}")
    worst = max((first.max_rel for first, _, _ in rows), key=lambda rel: (rel != rel, rel))  # NaN is the worst
    print(f"largest manual vs autodiff difference: {worst:.2e}")
    agree = all(passes(first.max_abs, first.max_rel, rtol=MANUAL_AUTODIFF_RTOL, atol=0.0) for first, _, _ in rows)
    return 0 if agree else 1
