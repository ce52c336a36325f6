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
from harness import add_variant_arguments, compare_workload, machine, save_report


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
    add_variant_arguments(parser, ["seed", "wide"])
    args = parser.parse_args()
    modes = args.modes.split(",")
    trees = {"baseline": tree_env(args.baseline), "candidate": tree_env(args.candidate)}
    report = {"baseline": args.baseline, "candidate": args.candidate or "installed", "workloads": {},
              "machine": machine()}
    for workload in (["seed", "wide"] if args.workload == "all" else [args.workload]):
        sizes, epochs = WORKLOADS[workload]["sizes"], args.epochs or WORKLOADS[workload]["epochs"]
        report["workloads"][workload] = compare_workload(workload, sizes, epochs, modes, trees, "candidate",
                                                         "baseline", rows=args.rows, repeats=args.repeats)
    save_report("versions", report, args.results_dir)


if __name__ == "__main__":
    main()
