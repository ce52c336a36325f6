"""Two source trees of funcnet on the same workload, in the same run: did a change cost speed?

``--baseline`` (and optionally ``--candidate``) is a directory that holds a
``funcnet`` package, e.g. an older commit unpacked with

    git archive a06483e funcnet | tar -x -C /tmp/funcnet-v1

Each tree's ``funcnet-manual`` and ``funcnet-autodiff`` peers run in fresh
processes pinned to one core with that directory first on ``PYTHONPATH``;
the candidate defaults to the funcnet this Python imports (the working
tree).  Every round runs all four; each round gives candidate / baseline of
the steady epoch per mode (below 1 = the candidate is faster).

Usage:
    python benchmarks/bench_versions.py --baseline /tmp/funcnet-v1 [--workload seed|wide|all] [--repeats 3]
Writes benchmarks/results/versions.json.
"""

import argparse
import os

from bench_training import WORKLOADS
from harness import add_results_dir_argument, compare_variants, machine, run_rounds, save_report

MODES = ["manual", "autodiff"]


def tree_env(directory):
    """``PYTHONPATH`` with ``directory`` first, or ``None`` (no change) for the default funcnet."""
    if directory is None:
        return None
    if not os.path.isfile(os.path.join(directory, "funcnet", "__init__.py")):
        raise SystemExit(f"{directory!r} holds no funcnet package (expected {directory}/funcnet/__init__.py)")
    rest = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.path.abspath(directory) + (os.pathsep + rest if rest else "")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="a directory containing the baseline's funcnet/")
    parser.add_argument("--candidate", help="a directory containing the candidate's funcnet/ (default: installed)")
    parser.add_argument("--workload", choices=["seed", "wide", "all"], default="all")
    parser.add_argument("--epochs", type=int, help="override the workload's epoch count")
    parser.add_argument("--modes", default=",".join(MODES), help="grad modes (default manual,autodiff)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows generated (80%% train); default 100,000")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    modes = args.modes.split(",")
    trees = {"baseline": tree_env(args.baseline), "candidate": tree_env(args.candidate)}
    report = {"baseline": args.baseline, "candidate": args.candidate or "installed", "workloads": {},
              "machine": machine()}
    for workload in (["seed", "wide"] if args.workload == "all" else [args.workload]):
        sizes, epochs = WORKLOADS[workload]["sizes"], args.epochs or WORKLOADS[workload]["epochs"]
        configs = [(f"{mode}/{tree}", {"peer": f"funcnet-{mode}", "sizes": sizes, "epochs": epochs,
                                       "rows": args.rows, "env": env})
                   for mode in modes for tree, env in trees.items()]
        rounds = run_rounds(configs, args.repeats, f"{workload} ")
        print(f"\n== {workload}: {'-'.join(map(str, sizes))}, {epochs} epochs, {args.repeats} rounds; "
              f"steady s/epoch, wall (CPU) ==")
        ratios = compare_variants(rounds, modes, list(trees), "candidate", "baseline")
        summary = {mode: {"candidate_over_baseline": r["ratio"], "candidate_over_baseline_cpu": r["ratio_cpu"]}
                   for mode, r in ratios.items()}
        report["workloads"][workload] = {"sizes": sizes, "epochs": epochs, "rounds": rounds, "summary": summary}
    save_report("versions", report, args.results_dir)


if __name__ == "__main__":
    main()
