"""Where an epoch's time goes: forward, gradients, optimizer and shuffle, and the kernels XLA compiles.

For each network (80,000 rows, batch 64, 1,250 steps; ``--rows`` to change), in this process:

* the CPU time of one ``lax.scan`` over the epoch's batches (best of
  ``--repeats``) that runs only the forward loss; the gradient (manual or
  ``jax.grad``) with a plain ``p - 1e-6 g`` update; the gradient with
  ``optax.sgd``; with ``optax.adam``; and the epoch's shuffle
  (``fn.engine.shuffled_batch_rows``) on its own;
* the kernels of the compiled training step (``fn.make_train_step`` with
  Adam): loop fusions, matmuls XLA:CPU hands to its dot library (the
  ``__ynn_fusion`` custom fusions), plain ``dot`` instructions (the emitter
  it uses otherwise, e.g. for a transposed operand) and copies.

Run it pinned like the other benchmarks:

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/bench_parts.py [--models seed,wide]

Writes benchmarks/results/parts.json.
"""

import argparse
import collections
import re
import time

import jax
import jax.numpy as jnp
import optax
from jax import lax

import funcnet as fn
from harness import add_results_dir_argument, machine, save_report
from peers import funcnet_model

MODELS = {
    "seed": ("mlp", [5, 10, 10, 1]),
    "wide": ("mlp", [5, 256, 256, 1]),
    "dropout": ("dropout", [5, 64, 64, 1]),
    "layer_norm": ("layer_norm", [5, 64, 64, 1]),
}
BATCH = 64


def best_cpu_seconds(function, *args, repeats):
    compiled = jax.jit(function)
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.process_time()
        jax.block_until_ready(compiled(*args))
        times.append(time.process_time() - start)
    return min(times)


def epoch_of(step, model, rows):
    """An epoch as a scan of ``step(carry, x_batch, y_batch, key)`` over fixed batches."""
    def epoch(carry, x, y, key):
        def body(carry, batch_and_index):
            batch, index = batch_and_index
            step_key = jax.random.fold_in(key, index) if model.needs_key else None
            return step(carry, x[batch], y[batch], step_key), None
        return lax.scan(body, carry, (rows, jnp.arange(rows.shape[0])))[0]
    return epoch


def kernel_counts(model, params, grad):
    """Kernels of the compiled Adam training step, by kind."""
    optimizer = optax.adam(1e-3)
    step = fn.make_train_step(model, optimizer, grad)
    x, y = jnp.ones((BATCH, model.n_in)), jnp.ones((BATCH, model.n_out))
    keyword = {"key": jax.random.key(0)} if model.needs_key else {}
    text = step.lower(params, optimizer.init(params), x, y, **keyword).compile().as_text()
    entry = text[text.index("\nENTRY"):]
    counts = collections.Counter()
    for line in entry.splitlines():
        match = re.match(r"^\s*(?:ROOT )?%\S+ = .*? ([\w-]+)\(", line)
        if not match:
            continue
        op = match.group(1)
        if op == "fusion":
            counts["library dot fusion" if "__ynn_fusion" in line or "kCustom" in line else "loop fusion"] += 1
        elif op in ("dot", "copy", "while"):
            counts[op] += 1
    return dict(counts)


def measure(name, rows_total, repeats):
    kind, sizes = MODELS[name]
    model = funcnet_model(kind, sizes)
    params = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (rows_total, sizes[0]))
    y = jax.random.normal(jax.random.key(2), (rows_total, sizes[-1]))
    rows = jnp.arange(rows_total // BATCH * BATCH).reshape(-1, BATCH)
    key = jax.random.key(3)
    seconds = {}

    def forward_only(p, xb, yb, k):
        scale = 1 + 1e-9 * model.loss(p, xb, yb, key=k)  # the params depend on it, so it is computed
        return jax.tree.map(lambda leaf: leaf * scale, p)

    seconds["forward loss"] = best_cpu_seconds(epoch_of(forward_only, model, rows), params, x, y, key,
                                               repeats=repeats)
    for grad in fn.engine.GRAD_MODES:
        value_and_grad = fn.engine.value_and_grad_fn(model, grad)

        def plain(p, xb, yb, k, value_and_grad=value_and_grad):
            grads = value_and_grad(p, xb, yb, key=k)[1]
            return jax.tree.map(lambda leaf, g: leaf - 1e-6 * g, p, grads)

        seconds[f"{grad}: gradient"] = best_cpu_seconds(epoch_of(plain, model, rows), params, x, y, key,
                                                        repeats=repeats)
        for label, optimizer in (("sgd", optax.sgd(1e-3)), ("adam", optax.adam(1e-3))):
            def with_optimizer(carry, xb, yb, k, optimizer=optimizer, value_and_grad=value_and_grad):
                p, state = carry
                grads = value_and_grad(p, xb, yb, key=k)[1]
                updates, state = optimizer.update(grads, state, p)
                return optax.apply_updates(p, updates), state

            seconds[f"{grad}: gradient + {label}"] = best_cpu_seconds(
                epoch_of(with_optimizer, model, rows), (params, optimizer.init(params)), x, y, key,
                repeats=repeats)
    seconds["shuffle"] = best_cpu_seconds(lambda k: fn.engine.shuffled_batch_rows(k, rows_total, BATCH, 0)[0], key,
                                          repeats=repeats)
    kernels = {grad: kernel_counts(model, params, grad) for grad in fn.engine.GRAD_MODES}
    return {"model": kind, "sizes": sizes, "epoch_cpu_s": seconds, "kernels_per_adam_step": kernels}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help=f"which of {', '.join(MODELS)}")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per part; the best counts")
    parser.add_argument("--rows", type=int, default=80_000, help="training rows (default 80,000)")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    results = {}
    for name in args.models.split(","):
        results[name] = result = measure(name, args.rows, args.repeats)
        steps = args.rows // BATCH
        print(f"\n== {name}: {'-'.join(map(str, result['sizes']))} ({result['model']}), CPU time per epoch "
              f"of {steps} steps ==")
        for part, value in result["epoch_cpu_s"].items():
            print(f"  {part:<28} {value * 1e3:8.1f} ms   {value / steps * 1e6:7.1f} µs/step")
        for grad, counts in result["kernels_per_adam_step"].items():
            print(f"  kernels per Adam step, {grad:<8}: {counts}")
    save_report("parts", {"rows": args.rows, "batch_size": BATCH, "models": results, "machine": machine()},
                args.results_dir)


if __name__ == "__main__":
    main()
