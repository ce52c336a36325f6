"""The dense layers' CPU layout: column-major with materialised transposes, or plain batch-first.

``funcnet.dense`` computes ``Zᵀ = Wᵀ Xᵀ`` with ``Wᵀ`` and ``Xᵀ`` kept as
buffers of their own behind ``lax.optimization_barrier`` (``columns``, the
default on CPU), or lets XLA fold the transposes back into the products,
which is the plain batch-first ``X W`` (``rows``, the default elsewhere).
``FUNCNET_DENSE_LAYOUT`` picks one; this script sets it in each peer
process's environment.

For the seed workload (5-10-10-1), a middle one (5-64-64-1) and the wide
one (5-256-256-1), 80,000 training rows, Adam 1e-3, batch 64: manual and
autodiff, each with both layouts, in fresh processes pinned to one core.  All eight runs make a
round; each round gives rows / columns of the steady epoch per mode (above 1 =
columns faster).

Usage:
    python benchmarks/bench_layout.py [--workload seed|mid|wide|all] [--repeats 3]
Writes benchmarks/results/layout.json.
"""

import argparse

from bench_training import WORKLOADS
from harness import add_results_dir_argument, compare_variants, machine, run_rounds, save_report, training_rows

WORKLOADS = {**WORKLOADS, "mid": {"sizes": [5, 64, 64, 1], "epochs": 10}}
ORDER = ["seed", "mid", "wide"]
MODES = ["manual", "autodiff"]
LAYOUTS = ["columns", "rows"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=ORDER + ["all"], default="all")
    parser.add_argument("--epochs", type=int, help="override the workload's epoch count")
    parser.add_argument("--modes", default=",".join(MODES), help="grad modes (default manual,autodiff)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows generated (80%% train); default 100,000")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    modes = args.modes.split(",")
    report = {"train_rows": training_rows(args.rows), "workloads": {}, "machine": machine()}
    for workload in (ORDER if args.workload == "all" else [args.workload]):
        sizes, epochs = WORKLOADS[workload]["sizes"], args.epochs or WORKLOADS[workload]["epochs"]
        configs = [(f"{mode}/{layout}", {"peer": f"funcnet-{mode}", "sizes": sizes, "epochs": epochs,
                                         "rows": args.rows, "env": {"FUNCNET_DENSE_LAYOUT": layout}})
                   for mode in modes for layout in LAYOUTS]
        rounds = run_rounds(configs, args.repeats, f"{workload} ")
        print(f"\n== {workload}: {'-'.join(map(str, sizes))}, {epochs} epochs, {args.repeats} rounds; "
              f"steady s/epoch, wall (CPU) ==")
        ratios = compare_variants(rounds, modes, LAYOUTS, "rows", "columns")
        summary = {mode: {"rows_over_columns": r["ratio"], "rows_over_columns_cpu": r["ratio_cpu"]}
                   for mode, r in ratios.items()}
        report["workloads"][workload] = {"sizes": sizes, "epochs": epochs, "rounds": rounds, "summary": summary}
    save_report("layout", report, args.results_dir)


if __name__ == "__main__":
    main()
