"""One training engine, before and after: ``fn.fit`` and the estimators per epoch against the matmul floor.

The workload is bench_sklearn's speed part: 100,000 ``make_classification``
rows (80,000 train, 20 features), batch 200, 400 steps per epoch.

* ``fit-manual`` / ``fit-autodiff``: ``fn.fit`` of a 20-100-2 ReLU network
  (softmax, cross-entropy on the integer labels), ``optax.adam(1e-3)``;
* ``estimator``: ``funcnet.sklearn.MLPClassifier`` with scikit-learn's
  defaults (20-100-1, logistic output), ``shuffle`` on;
* ``floor``: bench_sklearn's matmul floor for ``k`` outputs (the five products
  of a 20-100-k step, best layout and vector width).

Every measurement is a fresh process importing funcnet from ``--root``
(one or more checkouts, e.g. the commit before the change and this one), run
in turns, round after round, so that the checkouts are compared in the same
run.  An epoch's time is the process's CPU seconds of a warm run (the
program compiled by a first run) divided by its epochs.

    taskset -c 1 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python benchmarks/bench_engine.py --root /tmp/base --root . --rounds 3

Writes benchmarks/results/engine.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
WHATS = ("fit-manual", "fit-autodiff", "estimator")


def child(what, epochs, rows):
    """Runs in a fresh process whose ``sys.path`` starts at the checkout measured; prints JSON."""
    import numpy as np

    import funcnet  # noqa: F401  (first: bench_sklearn puts this checkout's funcnet on the path)

    sys.path.insert(1, HERE)
    from bench_sklearn import classification_data, split_and_scale

    x_train, _x_test, y_train, _y_test = split_and_scale(*classification_data(rows), None)
    if what == "estimator":
        from funcnet.sklearn import MLPClassifier

        def run(count):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                MLPClassifier(batch_size=200, max_iter=count, n_iter_no_change=count, random_state=0).fit(
                    x_train, y_train)
    else:
        import jax
        import optax

        import funcnet as fn

        model = fn.mlp([20, 100, 2], hidden="relu", output="softmax", loss="cross_entropy")
        params = model.init(jax.random.key(0))
        labels = np.asarray(y_train, np.int32)
        optimizer = optax.adam(1e-3)  # one object: fit's compiled epoch is cached per optimizer

        def run(count):
            fn.fit(model, params, optimizer, x_train, labels, epochs=count, batch_size=200,
                   key=jax.random.key(1), grad=what.split("-")[1])
    run(2)  # compiles
    start, cpu_start = time.perf_counter(), time.process_time()
    run(epochs)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({"per_epoch": wall / epochs, "per_epoch_cpu": cpu / epochs}))


def measure(root, what, epochs, rows):
    """One child process for checkout ``root``; its JSON."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(root), JAX_PLATFORMS="cpu")
    command = [sys.executable, os.path.abspath(__file__), "--child", what, "--epochs", str(epochs), "--rows",
               str(rows)]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=os.path.abspath(root),
                               timeout=3600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{what} at {root} failed: {completed.stderr[-2000:]}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", action="append", help="a checkout to measure (repeatable); default: this one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100, help="epochs of the timed run")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--what", default=",".join(WHATS), help=f"comma-separated among {', '.join(WHATS)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.epochs, args.rows)
    sys.path.insert(0, HERE)
    from bench_sklearn import matmul_floor
    from harness import machine, save_report

    roots = args.root or [os.path.dirname(HERE)]
    whats = [what.strip() for what in args.what.split(",")]
    results = []
    for round_index in range(args.rounds):
        floors = {outputs: matmul_floor("classification", args.rows, outputs=outputs)["floor"] for outputs in (1, 2)}
        for what in whats:
            floor = floors[1 if what == "estimator" else 2]
            for root in (roots if round_index % 2 == 0 else roots[::-1]):
                entry = {"round": round_index + 1, "what": what, "root": root, "floor": floor,
                         **measure(root, what, args.epochs, args.rows)}
                entry["vs_floor_cpu"] = entry["per_epoch_cpu"] / floor
                results.append(entry)
                print(f"round {round_index + 1} {what:12s} {root:24s} CPU s/epoch {entry['per_epoch_cpu']:.4f} "
                      f"(wall {entry['per_epoch']:.4f}), floor {floor:.4f}: {entry['vs_floor_cpu']:.2f}x", flush=True)
    save_report("engine", {"machine": machine(), "affinity": sorted(os.sched_getaffinity(0)), "rows": args.rows,
                           "epochs": args.epochs, "results": results})


if __name__ == "__main__":
    main()
