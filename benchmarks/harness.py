"""What every benchmark script shares: pinned peer processes, summaries, the matmul floor, reports.

Conventions (BENCHMARKS.md, "Machine and settings"):

* every measured training run is a fresh process (``peers.py``), pinned to
  one core with ``taskset -c 0`` where available, with OpenMP, OpenBLAS and
  MKL limited to one thread;
* an epoch's time is both wall-clock and the process's CPU time; on a shared
  machine the wall time also counts the moments another process held the
  core, the CPU time does not;
* the steady epoch is the median of epochs 2..N (the first one compiles);
* peers that are compared are run in the same invocation, round after
  round, and compared as ratios within a round.
"""

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
PINNING = "taskset -c 0; OMP/OPENBLAS/MKL/NUMEXPR_NUM_THREADS=1"


def single_core_env(extra=None):
    """Environment for a peer process: one thread everywhere, CPU backend, plus ``extra``."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = "1"
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.update(extra or {})
    return env


def pinned(command):
    """Prefix ``taskset -c 0`` when the machine has it, so every peer gets the same core."""
    return (["taskset", "-c", "0"] if shutil.which("taskset") else []) + command


def run_peer(peer, sizes, epochs, rows=100_000, *, model="mlp", env=None):
    """One ``peers.py`` run in a fresh pinned process; its JSON, or ``{"peer", "skipped": why}``.

    Args:
      peer: a name from ``peers.PEERS``.
      sizes: the network's widths, e.g. ``[5, 10, 10, 1]``.
      epochs: epochs to train (the first one includes compilation).
      rows: rows generated; 80% train, 20% test.
      model: ``peers.py --model``: ``mlp``, ``dropout`` or ``layer_norm`` (funcnet peers only).
      env: extra environment variables for the process (e.g. ``FUNCNET_DENSE_LAYOUT``).
    """
    command = pinned([sys.executable, os.path.join(HERE, "peers.py"), peer, "--model", model,
                      "--sizes", ",".join(map(str, sizes)), "--epochs", str(epochs), "--rows", str(rows)])
    completed = subprocess.run(command, capture_output=True, text=True, env=single_core_env(env), timeout=3600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return {"peer": peer, "skipped": f"failed: {completed.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def training_rows(rows):
    """How many of ``rows`` generated rows ``peers.py`` trains on (it holds out ``ceil(20%)``)."""
    return rows - math.ceil(0.2 * rows)


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])


def summarise(result):
    """Steady epoch (median of all but the first, wall and CPU), warm-up cost, end to end."""
    wall = result["epoch_seconds"]
    cpu = result.get("epoch_cpu_seconds", wall)
    steady = median(wall[1:] or wall)
    return {
        "steady_epoch_s": steady,
        "steady_epoch_cpu_s": median(cpu[1:] or cpu),
        "fastest_epoch_s": min(wall[1:] or wall),
        "first_epoch_s": wall[0],
        "warmup_s": max(wall[0] - steady, 0.0),
        "end_to_end_s": result["train_seconds"],
        "process_s": result["process_seconds"],
        "test_mse": result["test_mse"],
    }


def measure(peer, sizes, epochs, rows=100_000, *, model="mlp", env=None):
    """:func:`run_peer` then :func:`summarise`: ``{"peer", ...summary}`` or ``{"peer", "skipped"}``."""
    result = run_peer(peer, sizes, epochs, rows, model=model, env=env)
    if "skipped" in result:
        return result
    return {"peer": peer, **summarise(result), "train_rows": result["train_rows"],
            **({"dense_layout": result["dense_layout"]} if "dense_layout" in result else {})}


def run_rounds(configs, repeats, label=""):
    """Run every ``(name, measure_kwargs)`` of ``configs`` once per round, ``repeats`` rounds.

    Each round starts one configuration later than the previous one, so that
    no configuration always runs first (or always right after another).
    Returns one ``{name: measure(...)}`` dict per round.
    """
    rounds = []
    for index in range(repeats):
        start = index % len(configs)
        results = {}
        for name, kwargs in configs[start:] + configs[:start]:
            results[name] = measure(**kwargs)
            print(f"  {label}round {index + 1}: ran {name}", file=sys.stderr, flush=True)
        rounds.append({name: results[name] for name, _ in configs})
    return rounds


def cell(row):
    """``wall (CPU)`` steady seconds per epoch of one run, or ``skipped``."""
    return "skipped" if "skipped" in row else f"{row['steady_epoch_s']:.4f} ({row['steady_epoch_cpu_s']:.4f})"


def compare_variants(rounds, modes, variants, numerator, denominator):
    """Print each ``mode/variant``'s cells per round and ``numerator / denominator`` per round.

    Returns ``{mode: {"ratio": [wall ratio per round], "ratio_cpu": [...]}}``
    over the rounds where both ran.
    """
    summary = {}
    for mode in modes:
        for variant in variants:
            cells = [cell(r[f"{mode}/{variant}"]) for r in rounds]
            print(f"  {mode:<9} {variant:<9} " + "  ".join(f"{text:>17}" for text in cells))
        wall, cpu = [], []
        for r in rounds:
            top, bottom = r[f"{mode}/{numerator}"], r[f"{mode}/{denominator}"]
            if "steady_epoch_s" in top and "steady_epoch_s" in bottom:
                wall.append(top["steady_epoch_s"] / bottom["steady_epoch_s"])
                cpu.append(top["steady_epoch_cpu_s"] / bottom["steady_epoch_cpu_s"])
        summary[mode] = {"ratio": wall, "ratio_cpu": cpu}
        if wall:
            print(f"  {mode:<9} {numerator} / {denominator}: wall " + " ".join(f"{v:.2f}" for v in wall)
                  + f" (range {span(wall)}), CPU " + " ".join(f"{v:.2f}" for v in cpu) + f" (range {span(cpu)})")
    return summary


def add_variant_arguments(parser, workloads):
    """The options of a variant comparison: ``--workload`` (one of ``workloads`` or "all"), ``--epochs``,
    ``--modes``, ``--repeats``, ``--rows`` and ``--results-dir``."""
    parser.add_argument("--workload", choices=[*workloads, "all"], default="all")
    parser.add_argument("--epochs", type=int, help="override the workload's epoch count")
    parser.add_argument("--modes", default="manual,autodiff", help="grad modes (default manual,autodiff)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows generated (80%% train); default 100,000")
    add_results_dir_argument(parser)


def compare_workload(workload, sizes, epochs, modes, variants, numerator, denominator, *, rows, repeats):
    """Run every ``funcnet-<mode>`` peer under each variant's environment, round after round.

    ``variants`` maps a variant name to the environment its peer runs with.
    Returns the workload's report ``{"sizes", "epochs", "rounds", "summary"}``,
    where ``summary[mode]["<numerator>_over_<denominator>"]`` (and ``..._cpu``)
    lists the per-round ratio of steady epoch times (:func:`compare_variants`).
    """
    configs = [(f"{mode}/{variant}", {"peer": f"funcnet-{mode}", "sizes": sizes, "epochs": epochs,
                                      "rows": rows, "env": env})
               for mode in modes for variant, env in variants.items()]
    rounds = run_rounds(configs, repeats, f"{workload} ")
    print(f"\n== {workload}: {'-'.join(map(str, sizes))}, {epochs} epochs, {repeats} rounds; "
          f"steady s/epoch, wall (CPU) ==")
    ratios = compare_variants(rounds, modes, list(variants), numerator, denominator)
    name = f"{numerator}_over_{denominator}"
    summary = {mode: {name: r["ratio"], f"{name}_cpu": r["ratio_cpu"]} for mode, r in ratios.items()}
    return {"sizes": sizes, "epochs": epochs, "rounds": rounds, "summary": summary}


def span(values, digits=2):
    """``"a–b"`` (the range of ``values``), or one number when they agree at this precision."""
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low}–{high}"


def flops_per_epoch(sizes, rows):
    """Multiply-adds ×2 of forward (x W), backward (Aᵀ dZ for every layer, dZ Wᵀ for all but the first)."""
    forward = sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    input_grads = sum(n_in * n_out for n_in, n_out in zip(sizes[1:-1], sizes[2:]))
    return 2 * rows * (2 * forward + input_grads)


def matmul_rate(repeats=20):
    """GFLOP/s of a plain 1024³ float32 matmul in JAX and NumPy on one core (pinned subprocess).

    The best of ``repeats`` products, timed by wall clock and by CPU time;
    the CPU-time rate does not drop when another process takes the core
    for a moment.  Returns ``{"jax_gflops", "numpy_gflops", "jax_cpu_gflops", "numpy_cpu_gflops"}``.
    """
    code = (
        "import time, numpy as np, jax, jax.numpy as jnp\n"
        "a = np.random.default_rng(0).normal(size=(1024, 1024)).astype(np.float32)\n"
        "f = jax.jit(lambda a, b: a @ b); ja = jnp.asarray(a); f(ja, ja).block_until_ready()\n"
        "def best(fn, clock):\n"
        "    ts = []\n"
        f"    for _ in range({repeats}):\n"
        "        t = clock(); fn(); ts.append(clock() - t)\n"
        "    return 2 * 1024**3 / max(min(ts), 1e-9) / 1e9\n"
        "jx, npy = (lambda: f(ja, ja).block_until_ready()), (lambda: a @ a)\n"
        "print(best(jx, time.perf_counter), best(npy, time.perf_counter),\n"
        "      best(jx, time.process_time), best(npy, time.process_time))\n"
    )
    out = subprocess.run(pinned([sys.executable, "-c", code]), capture_output=True, text=True,
                         env=single_core_env()).stdout.split()
    names = ("jax_gflops", "numpy_gflops", "jax_cpu_gflops", "numpy_cpu_gflops")
    return dict(zip(names, map(float, out)))


def floor_seconds(sizes, rows, rate):
    """The arithmetic floor of an epoch: its FLOPs at the best wall-clock matmul rate of ``rate``."""
    return flops_per_epoch(sizes, rows) / (max(rate["jax_gflops"], rate["numpy_gflops"]) * 1e9)


def floor_cpu_seconds(sizes, rows, rate):
    """The same floor at the best CPU-time matmul rate (compare with CPU seconds per epoch)."""
    return flops_per_epoch(sizes, rows) / (max(rate["jax_cpu_gflops"], rate["numpy_cpu_gflops"]) * 1e9)


def warm_file_cache():
    """Import every peer's libraries once, so the first measured peer does not pay cold disk reads."""
    code = "import importlib\nfor name in ('jax', 'optax', 'torch', 'sklearn', 'flax', 'funcnet'):\n" \
           "    try: importlib.import_module(name)\n    except ImportError: pass\n"
    subprocess.run([sys.executable, "-c", code], capture_output=True, env=single_core_env())


def machine():
    """CPU, cores, Python and library versions, and how peers are pinned."""
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
    try:
        import funcnet

        versions["funcnet"] = f"{funcnet.__version__} ({os.path.dirname(funcnet.__file__)})"
    except ImportError:
        versions["funcnet"] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "threads": f"1 ({PINNING})", "versions": versions, "date": time.strftime("%Y-%m-%d %H:%M")}


def add_results_dir_argument(parser):
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where to write the JSON report (default: benchmarks/results)")


def save_report(name, report, results_dir=RESULTS_DIR):
    """Write ``report`` to ``<results_dir>/<name>.json`` and print it as one JSON line."""
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, f"{name}.json"), "w") as out:
        json.dump(report, out, indent=2)
    print(json.dumps(report))
