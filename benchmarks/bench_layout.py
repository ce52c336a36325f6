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
from harness import add_variant_arguments, compare_workload, machine, save_report, training_rows

WORKLOADS = {**WORKLOADS, "mid": {"sizes": [5, 64, 64, 1], "epochs": 10}}
ORDER = ["seed", "mid", "wide"]
LAYOUTS = ["columns", "rows"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_variant_arguments(parser, ORDER)
    args = parser.parse_args()
    modes = args.modes.split(",")
    report = {"train_rows": training_rows(args.rows), "workloads": {}, "machine": machine()}
    for workload in (ORDER if args.workload == "all" else [args.workload]):
        sizes, epochs = WORKLOADS[workload]["sizes"], args.epochs or WORKLOADS[workload]["epochs"]
        layouts = {layout: {"FUNCNET_DENSE_LAYOUT": layout} for layout in LAYOUTS}
        report["workloads"][workload] = compare_workload(workload, sizes, epochs, modes, layouts, "rows", "columns",
                                                         rows=args.rows, repeats=args.repeats)
    save_report("layout", report, args.results_dir)


if __name__ == "__main__":
    main()
