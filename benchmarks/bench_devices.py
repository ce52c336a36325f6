"""Data-parallel throughput of 5-256-256-1 (batch 1024) on 1, 2 and 4 forced CPU devices.

Each device count runs in a fresh process with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and ``fit(..., mesh=...)``.
On a 2-core machine the forced devices share the same 2 cores, so this measures
the cost of the sharded code path (partitioning, all-reduce), not a speed-up;
on a multi-GPU machine the same script measures the real scaling.

Usage: python benchmarks/bench_devices.py [--epochs 4]
Writes benchmarks/results/devices.json.
"""

import argparse
import json
import os
import subprocess
import sys

from harness import add_results_dir_argument, save_report

HERE = os.path.dirname(os.path.abspath(__file__))

WORKER = r"""
import json, sys, time
import jax, optax
sys.path.insert(0, {here!r})
import funcnet as fn
from peers import article_data
x, y, _, _ = article_data(100_000)
model = fn.mlp([5, 256, 256, 1])
params = model.init(jax.random.key(0))
mesh = jax.make_mesh((jax.device_count(),), ("data",))
stamps = [time.perf_counter()]
fn.fit(model, params, optax.adam(1e-3), x, y, epochs={epochs}, batch_size=1024, key=jax.random.key(1),
       mesh=mesh, callback=lambda *_: stamps.append(time.perf_counter()))
epochs = [b - a for a, b in zip(stamps, stamps[1:])]
steady = sorted(epochs[1:])[len(epochs[1:]) // 2]
print(json.dumps({{"devices": jax.device_count(), "first_epoch_s": epochs[0], "steady_epoch_s": steady,
                  "rows_per_s": len(x) / steady, "platform": jax.devices()[0].platform}}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    add_results_dir_argument(parser)
    args = parser.parse_args()
    rows = []
    for devices in (1, 2, 4):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        code = WORKER.format(here=HERE, epochs=args.epochs)
        completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
        rows.append(json.loads(lines[-1]) if lines else {"devices": devices, "error": completed.stderr[-500:]})
    print(f"{'devices':>7} {'s/epoch':>9} {'rows/s':>10} {'first epoch s':>14}")
    for row in rows:
        if "error" in row:
            print(f"{row['devices']:>7} failed: {row['error']}")
            continue
        print(f"{row['devices']:>7} {row['steady_epoch_s']:>9.3f} {row['rows_per_s']:>10.0f} {row['first_epoch_s']:>14.2f}")
    save_report("devices", {"rows": rows}, args.results_dir)


if __name__ == "__main__":
    main()
