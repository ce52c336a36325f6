"""N models trained by one vmapped program (fn.fit_many) vs N sequential fn.fit calls.

Seed workload (80,000 rows, 5-10-10-1, Adam 1e-3, batch 64), 3 epochs per
model, N = 1, 4, 16, 64.  Vmapped runs both with one key per model (``keys``:
own split and shuffles) and with one shared ``key`` (the same batches for all).
Every side is warmed up first (compiled once), so the times are training only;
compile times are reported apart.  Run it pinned like the other benchmarks:

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/bench_many.py

Writes benchmarks/results/many.json.
"""

import argparse
import time

import jax
import optax

import funcnet as fn
from harness import add_results_dir_argument, save_report
from peers import article_data

EPOCHS = 3
REPEATS = 3
COUNTS = (1, 4, 16, 64)


def timed(function):
    start = time.perf_counter()
    jax.block_until_ready(function())
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)), help="numbers of models (default 1,4,16,64)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows generated (80%% train)")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    x, y, _, _ = article_data(args.rows)
    model = fn.mlp([5, 10, 10, 1])
    optimizer = optax.adam(1e-3)
    rows = []
    for count in map(int, args.counts.split(",")):
        keys = jax.random.split(jax.random.key(count), count)
        params = fn.stacked_init(model, keys)
        singles = [jax.tree.map(lambda leaf, i=i: leaf[i], params) for i in range(count)]

        def vmapped():
            return fn.fit_many(model, params, optimizer, x, y, epochs=EPOCHS, batch_size=64, keys=keys)[0]

        def vmapped_shared_key():
            return fn.fit_many(model, params, optimizer, x, y, epochs=EPOCHS, batch_size=64, key=keys[0])[0]

        def sequential():
            return [fn.fit(model, singles[i], optimizer, x, y, epochs=EPOCHS, batch_size=64, key=keys[i])[0]
                    for i in range(count)]

        first = {name: timed(run) for name, run in
                 [("vmapped", vmapped), ("shared", vmapped_shared_key), ("sequential", sequential)]}
        vmapped_s = min(timed(vmapped) for _ in range(REPEATS))
        shared_s = min(timed(vmapped_shared_key) for _ in range(REPEATS))
        sequential_s = min(timed(sequential) for _ in range(REPEATS))
        single = sequential_s / count
        rows.append({"models": count, "vmapped_s": vmapped_s, "vmapped_shared_key_s": shared_s,
                     "sequential_s": sequential_s, "single_fit_s": single,
                     "speedup": sequential_s / vmapped_s, "speedup_shared_key": sequential_s / shared_s,
                     "vmapped_in_single_fits": vmapped_s / single,
                     "shared_key_in_single_fits": shared_s / single,
                     "vmapped_first_call_s": first["vmapped"], "shared_key_first_call_s": first["shared"],
                     "sequential_first_call_s": first["sequential"]})
        print(f"  N={count} done", flush=True)
    print(f"\n{'models':>6} {'sequential s':>13} {'vmapped s':>10} {'in fits':>8} {'shared key s':>13} {'in fits':>8}")
    for row in rows:
        print(f"{row['models']:>6} {row['sequential_s']:>13.3f} {row['vmapped_s']:>10.3f} "
              f"{row['vmapped_in_single_fits']:>8.1f} {row['vmapped_shared_key_s']:>13.3f} "
              f"{row['shared_key_in_single_fits']:>8.1f}")
    save_report("many", {"epochs": EPOCHS, "rows": rows}, args.results_dir)


if __name__ == "__main__":
    main()
