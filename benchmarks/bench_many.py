"""N models trained by one vmapped program (fn.fit_many) vs N sequential fn.fit calls.

Seed workload (80,000 rows, 5-10-10-1, Adam 1e-3, batch 64), 3 epochs per
model, N = 1, 4, 16, 64.  Both sides are warmed up first (compiled once), so
the times are training only; compile times are reported apart.  Run it
pinned like the other benchmarks:

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/bench_many.py

Writes benchmarks/results/many.json.
"""

import time

import jax
import optax

import funcnet as fn
from bench_training import save_report
from peers import article_data

EPOCHS = 3


def timed(function):
    start = time.perf_counter()
    jax.block_until_ready(function())
    return time.perf_counter() - start


def main():
    x, y, _, _ = article_data(100_000)
    model = fn.mlp([5, 10, 10, 1])
    optimizer = optax.adam(1e-3)
    rows = []
    for count in (1, 4, 16, 64):
        keys = jax.random.split(jax.random.key(count), count)
        params = fn.stacked_init(model, keys)
        singles = [jax.tree.map(lambda leaf, i=i: leaf[i], params) for i in range(count)]

        def vmapped():
            return fn.fit_many(model, params, optimizer, x, y, epochs=EPOCHS, batch_size=64, keys=keys)[0]

        def sequential():
            return [fn.fit(model, singles[i], optimizer, x, y, epochs=EPOCHS, batch_size=64, key=keys[i])[0]
                    for i in range(count)]

        vmapped_first, sequential_first = timed(vmapped), timed(sequential)
        vmapped_s, sequential_s = min(timed(vmapped) for _ in range(2)), min(timed(sequential) for _ in range(2))
        rows.append({"models": count, "vmapped_s": vmapped_s, "sequential_s": sequential_s,
                     "speedup": sequential_s / vmapped_s, "vmapped_first_call_s": vmapped_first,
                     "sequential_first_call_s": sequential_first,
                     "single_fit_s": sequential_s / count})
        print(f"  N={count} done", flush=True)
    print(f"\n{'models':>6} {'vmapped s':>10} {'sequential s':>13} {'speed-up':>9} {'vmapped / one fit':>18}")
    for row in rows:
        print(f"{row['models']:>6} {row['vmapped_s']:>10.3f} {row['sequential_s']:>13.3f} {row['speedup']:>8.1f}x "
              f"{row['vmapped_s'] / row['single_fit_s']:>17.1f}x")
    save_report("many", {"epochs": EPOCHS, "rows": rows})


if __name__ == "__main__":
    main()
