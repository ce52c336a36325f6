"""funcnet's fit against what users would write instead, on the second article's workload.

Each peer (see peers.py) runs in a fresh process pinned to one core
(``taskset -c 0`` when available) with OMP/OpenBLAS/MKL threads set to 1, on
the same float32 data, network, batch size (64), optimizer (Adam 1e-3) and
epochs.  Reported per peer: steady-state seconds per epoch (median of epochs
2..N), compile/warm-up time (first epoch minus the steady epoch), end-to-end
training time (imports, model creation, all epochs, evaluation), test MSE,
and the ratio of its steady epoch and end-to-end time to funcnet-manual's.

A plain matrix multiply is timed in the same run to give the arithmetic
floor: FLOPs per epoch / achieved matmul FLOP/s.

Usage:
    python benchmarks/bench_training.py                 # both workloads, all peers
    python benchmarks/bench_training.py --workload seed --peers funcnet-manual,numpy
Writes benchmarks/results/training-<workload>.json.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = {
    "seed": {"sizes": [5, 10, 10, 1], "epochs": 20},
    "wide": {"sizes": [5, 256, 256, 1], "epochs": 8},
}
PEERS = ["funcnet-manual", "funcnet-autodiff", "jax-scan", "jax-step", "numpy", "torch", "sklearn", "flax-nnx"]
BASELINE = "funcnet-manual"


def single_core_env():
    """Environment for a peer process: one thread everywhere."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = "1"
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def pinned(command):
    """Prefix ``taskset -c 0`` when the machine has it, so every peer gets the same core."""
    return (["taskset", "-c", "0"] if shutil.which("taskset") else []) + command


def run_peer(peer, sizes, epochs, rows=100_000, script="peers.py"):
    command = pinned([sys.executable, os.path.join(HERE, script), peer,
                      "--sizes", ",".join(map(str, sizes)), "--epochs", str(epochs), "--rows", str(rows)])
    completed = subprocess.run(command, capture_output=True, text=True, env=single_core_env(), timeout=3600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return {"peer": peer, "skipped": f"failed: {completed.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def save_report(name, report):
    """Write ``report`` to ``benchmarks/results/<name>.json`` and print it as one JSON line."""
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"{name}.json"), "w") as out:
        json.dump(report, out, indent=2)
    print(json.dumps(report))


def warm_file_cache():
    """Import every peer's libraries once, so the first measured peer does not pay cold disk reads."""
    code = "import importlib\nfor name in ('jax', 'optax', 'torch', 'sklearn', 'flax', 'funcnet'):\n" \
           "    try: importlib.import_module(name)\n    except ImportError: pass\n"
    subprocess.run([sys.executable, "-c", code], capture_output=True, env=single_core_env())


def summarise(result):
    """Steady epoch (median of all but the first), warm-up cost, end to end."""
    times = sorted(result["epoch_seconds"][1:]) or result["epoch_seconds"]
    steady = times[len(times) // 2]
    return {
        "steady_epoch_s": steady,
        "first_epoch_s": result["epoch_seconds"][0],
        "warmup_s": max(result["epoch_seconds"][0] - steady, 0.0),
        "end_to_end_s": result["train_seconds"],
        "process_s": result["process_seconds"],
        "test_mse": result["test_mse"],
    }


def flops_per_epoch(sizes, rows):
    """Multiply-adds ×2 of forward (x W), backward (Aᵀ dZ for every layer, dZ Wᵀ for all but the first)."""
    forward = sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    input_grads = sum(n_in * n_out for n_in, n_out in zip(sizes[1:-1], sizes[2:]))
    return 2 * rows * (2 * forward + input_grads)


def matmul_rate():
    """GFLOP/s of a plain 1024³ float32 matmul in JAX and NumPy, one core (pinned subprocess)."""
    code = (
        "import time, numpy as np, jax, jax.numpy as jnp\n"
        "a = np.random.default_rng(0).normal(size=(1024, 1024)).astype(np.float32)\n"
        "f = jax.jit(lambda a, b: a @ b); ja = jnp.asarray(a); f(ja, ja).block_until_ready()\n"
        "def best(fn):\n"
        "    ts = []\n"
        "    for _ in range(10):\n"
        "        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)\n"
        "    return 2 * 1024**3 / min(ts) / 1e9\n"
        "print(best(lambda: f(ja, ja).block_until_ready()), best(lambda: a @ a))\n"
    )
    out = subprocess.run(pinned([sys.executable, "-c", code]), capture_output=True, text=True,
                         env=single_core_env()).stdout.split()
    return {"jax_gflops": float(out[0]), "numpy_gflops": float(out[1])}


def machine():
    versions = {}
    for name in ("jax", "jaxlib", "optax", "numpy", "torch", "sklearn", "flax"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "threads": "1 (taskset -c 0, OMP/OPENBLAS/MKL_NUM_THREADS=1)", "versions": versions}


def table(rows, baseline):
    base = next((row for row in rows if row["peer"] == baseline and "steady_epoch_s" in row), None)
    header = (f"{'peer':<18} {'s/epoch':>9} {'warm-up s':>9} {'end-to-end s':>12} {'test MSE':>9} "
              f"{'epoch ratio':>11} {'e2e ratio':>9}")
    lines = [header, "-" * len(header)]
    for row in rows:
        if "skipped" in row:
            lines.append(f"{row['peer']:<18} skipped: {row['skipped']}")
            continue
        ratio = row["steady_epoch_s"] / base["steady_epoch_s"] if base else float("nan")
        e2e = row["end_to_end_s"] / base["end_to_end_s"] if base else float("nan")
        lines.append(f"{row['peer']:<18} {row['steady_epoch_s']:>9.4f} {row['warmup_s']:>9.2f} "
                     f"{row['end_to_end_s']:>12.2f} {row['test_mse']:>9.2f} {ratio:>10.1f}x {e2e:>8.1f}x")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["seed", "wide", "all"], default="all")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--epochs", type=int, help="override the workload's epoch count")
    args = parser.parse_args()
    peers = args.peers.split(",")
    warm_file_cache()
    rate = matmul_rate()
    for workload in (["seed", "wide"] if args.workload == "all" else [args.workload]):
        config = WORKLOADS[workload]
        epochs = args.epochs or config["epochs"]
        rows = []
        for peer in peers:
            result = run_peer(peer, config["sizes"], epochs)
            rows.append(result if "skipped" in result else {"peer": peer, **summarise(result)})
            print(f"  ran {peer}", file=sys.stderr, flush=True)
        flops = flops_per_epoch(config["sizes"], 80_000)
        floor = flops / (max(rate.values()) * 1e9)
        print(f"\n== {workload}: {'-'.join(map(str, config['sizes']))}, 80,000 training rows, batch 64, "
              f"Adam 1e-3, {epochs} epochs; ratios are peer / {BASELINE} ==")
        print(table(rows, BASELINE))
        print(f"arithmetic: {flops / 1e9:.2f} GFLOP/epoch; matmul 1024³ on one core: JAX "
              f"{rate['jax_gflops']:.1f}, NumPy {rate['numpy_gflops']:.1f} GFLOP/s; floor {floor:.4f} s/epoch")
        report = {"workload": workload, "sizes": config["sizes"], "epochs": epochs, "rows": rows,
                  "flops_per_epoch": flops, "matmul": rate, "floor_s_per_epoch": floor, "machine": machine()}
        save_report(f"training-{workload}", report)


if __name__ == "__main__":
    main()
