"""funcnet's fit against what users would write instead, on the second article's workload.

Each peer (see peers.py) runs in a fresh process pinned to one core
(``taskset -c 0`` when available) with OMP/OpenBLAS/MKL threads set to 1, on
the same float32 data, network, batch size (64), optimizer (Adam 1e-3) and
epochs.  Reported per peer: steady-state seconds per epoch (median of epochs
2..N, wall clock and CPU time), compile/warm-up time (first epoch minus the
steady epoch), end-to-end training time (imports, model creation, all
epochs, evaluation), test MSE.

The whole list of peers runs ``--repeats`` times (rounds; each round starts
one peer later, so no peer always runs first), and a plain 1024³ matrix
multiply is timed in every round.  Every round gives its own ratios:

* each funcnet mode against the whole-epoch ``lax.scan`` JAX peer and NumPy
  (peer's epoch / funcnet's epoch: higher = funcnet faster);
* each funcnet mode against the arithmetic floor, FLOPs per epoch / the
  round's best matmul rate (lower = closer to the floor).

Usage:
    python benchmarks/bench_training.py                 # both workloads, all peers, 3 rounds
    python benchmarks/bench_training.py --workload seed --peers funcnet-manual,numpy --repeats 5
Writes benchmarks/results/training-<workload>.json.
"""

import argparse
import sys

from harness import (add_results_dir_argument, floor_cpu_seconds, floor_seconds, flops_per_epoch, machine,
                     matmul_rate, measure, save_report, span, training_rows, warm_file_cache)

WORKLOADS = {
    "seed": {"sizes": [5, 10, 10, 1], "epochs": 20},
    "wide": {"sizes": [5, 256, 256, 1], "epochs": 8},
}
PEERS = ["funcnet-manual", "funcnet-autodiff", "jax-scan", "jax-step", "numpy", "torch", "sklearn", "flax-nnx"]
FUNCNET = ["funcnet-manual", "funcnet-autodiff"]
REFERENCES = ["jax-scan", "numpy"]


def rotated(items, start):
    return items[start % len(items):] + items[:start % len(items)]


def run_round(peers, sizes, epochs, rows, index):
    """Every peer once (order rotated by ``index``), plus the matmul rate; rows listed in ``peers`` order."""
    rate = matmul_rate()
    results = {}
    for peer in rotated(peers, index):
        results[peer] = measure(peer, sizes, epochs, rows)
        print(f"  round {index + 1}: ran {peer}", file=sys.stderr, flush=True)
    floor = floor_seconds(sizes, training_rows(rows), rate)
    floor_cpu = floor_cpu_seconds(sizes, training_rows(rows), rate)
    return {"matmul": rate, "floor_s_per_epoch": floor, "floor_cpu_s_per_epoch": floor_cpu,
            "rows": [results[peer] for peer in peers], "ratios": ratios(results, floor, floor_cpu)}


def ratios(results, floor, floor_cpu):
    """For each funcnet mode: reference epoch / funcnet epoch (wall and CPU), and funcnet epoch / floor."""
    out = {}
    for mode in FUNCNET:
        if "steady_epoch_s" not in results.get(mode, {}):
            continue
        own = results[mode]
        entry = {"of_floor": own["steady_epoch_s"] / floor, "of_floor_cpu": own["steady_epoch_cpu_s"] / floor_cpu}
        for reference in REFERENCES:
            if "steady_epoch_s" in results.get(reference, {}):
                entry[f"{reference}_over_funcnet"] = results[reference]["steady_epoch_s"] / own["steady_epoch_s"]
                entry[f"{reference}_over_funcnet_cpu"] = (results[reference]["steady_epoch_cpu_s"]
                                                          / own["steady_epoch_cpu_s"])
        out[mode] = entry
    return out


def table(rows):
    header = (f"{'peer':<18} {'s/epoch':>9} {'CPU s/ep':>9} {'warm-up s':>9} {'end-to-end s':>12} "
              f"{'test MSE':>9}")
    lines = [header, "-" * len(header)]
    for row in rows:
        if "skipped" in row:
            lines.append(f"{row['peer']:<18} skipped: {row['skipped']}")
            continue
        lines.append(f"{row['peer']:<18} {row['steady_epoch_s']:>9.4f} {row['steady_epoch_cpu_s']:>9.4f} "
                     f"{row['warmup_s']:>9.2f} {row['end_to_end_s']:>12.2f} {row['test_mse']:>9.2f}")
    return "\n".join(lines)


def ratio_lines(rounds):
    """One line per funcnet mode and ratio: every round's value, then the range."""
    lines = []
    for mode in FUNCNET:
        names = [f"{r}_over_funcnet{clock}" for r in REFERENCES for clock in ("", "_cpu")]
        for name in names + ["of_floor", "of_floor_cpu"]:
            values = [round_["ratios"].get(mode, {}).get(name) for round_ in rounds]
            values = [v for v in values if v is not None]
            if values:
                clock = " (CPU)" if name.endswith("_cpu") else ""
                label = (f"{mode} / floor" if name.startswith("of_floor")
                         else f"{name.split('_over_')[0]} / {mode}") + clock
                lines.append(f"  {label:<34} " + "  ".join(f"{v:6.2f}x" for v in values)
                             + f"   range {span(values)}x")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["seed", "wide", "all"], default="all")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--epochs", type=int, help="override the workload's epoch count")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all peers (default 3)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows generated (80%% train); default 100,000")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    peers = args.peers.split(",")
    warm_file_cache()
    for workload in (["seed", "wide"] if args.workload == "all" else [args.workload]):
        config = WORKLOADS[workload]
        epochs = args.epochs or config["epochs"]
        rounds = [run_round(peers, config["sizes"], epochs, args.rows, index) for index in range(args.repeats)]
        print(f"\n== {workload}: {'-'.join(map(str, config['sizes']))}, {training_rows(args.rows):,} training rows, "
              f"batch 64, Adam 1e-3, {epochs} epochs, {args.repeats} rounds ==")
        for index, round_ in enumerate(rounds):
            rate = round_["matmul"]
            print(f"\nround {index + 1}: matmul 1024³ JAX {rate['jax_gflops']:.1f}, NumPy "
                  f"{rate['numpy_gflops']:.1f} GFLOP/s (CPU time: {rate['jax_cpu_gflops']:.1f}, "
                  f"{rate['numpy_cpu_gflops']:.1f}); floor {round_['floor_s_per_epoch']:.4f} s/epoch "
                  f"(CPU {round_['floor_cpu_s_per_epoch']:.4f})")
            print(table(round_["rows"]))
        print("\nratios per round (reference / funcnet: higher = funcnet faster; funcnet / floor: lower = better)")
        print("\n".join(ratio_lines(rounds)))
        report = {"workload": workload, "sizes": config["sizes"], "epochs": epochs, "peers": peers,
                  "flops_per_epoch": flops_per_epoch(config["sizes"], training_rows(args.rows)),
                  "rounds": rounds, "machine": machine()}
        save_report(f"training-{workload}", report, args.results_dir)


if __name__ == "__main__":
    main()
