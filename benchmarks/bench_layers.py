"""Hand-written backprop against jax.grad for models with dropout and layer normalisation.

On the seed data (80,000 training rows, Adam 1e-3, batch 64), three networks
of the same widths (default 5-64-64-1, ReLU):

* ``mlp``:        ``fn.mlp(sizes)``, the reference without the new layers;
* ``dropout``:    ``fn.mlp(sizes, dropout=0.2)``;
* ``layer_norm``: ``fn.sequential(5, [fn.dense(64, "relu"), fn.layer_norm(),
  fn.dense(64, "relu"), fn.layer_norm(), fn.dense(1)])``;

each trained with ``grad="manual"`` and ``grad="autodiff"`` by ``fn.fit``,
every run in a fresh process pinned to one core (``peers.py --model``).
All six runs make a round; a round gives, per network, the ratio
manual / autodiff of the steady epoch (wall clock and CPU time; below 1 =
manual faster).  The target is manual ≤ 1.10 × autodiff.

Usage:
    python benchmarks/bench_layers.py [--repeats 3] [--epochs 10] [--models dropout,layer_norm]
Writes benchmarks/results/layers.json.
"""

import argparse

from harness import add_results_dir_argument, machine, run_rounds, save_report, span, training_rows

MODELS = ["mlp", "dropout", "layer_norm"]
MODES = ["manual", "autodiff"]
TARGET = 1.10


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="which of mlp, dropout, layer_norm")
    parser.add_argument("--sizes", default="5,64,64,1")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows generated (80%% train); default 100,000")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    models = args.models.split(",")
    sizes = [int(size) for size in args.sizes.split(",")]
    configs = [(f"{model}/{mode}", {"peer": f"funcnet-{mode}", "sizes": sizes, "epochs": args.epochs,
                                    "rows": args.rows, "model": model})
               for model in models for mode in MODES]
    rounds = run_rounds(configs, args.repeats)

    print(f"\n== {'-'.join(map(str, sizes))}, {training_rows(args.rows):,} training rows, batch 64, Adam 1e-3, "
          f"{args.epochs} epochs, {args.repeats} rounds; steady s/epoch (CPU s/epoch) ==")
    header = f"{'model':<11} {'grad':<9} " + " ".join(f"{'round ' + str(i + 1):>17}" for i in range(args.repeats))
    print(header)
    summary = {}
    for model in models:
        for mode in MODES:
            cells = []
            for round_ in rounds:
                row = round_[f"{model}/{mode}"]
                cells.append("skipped" if "skipped" in row else
                             f"{row['steady_epoch_s']:.4f} ({row['steady_epoch_cpu_s']:.4f})")
            print(f"{model:<11} {mode:<9} " + " ".join(f"{cell:>17}" for cell in cells))
        wall, cpu = [], []
        for round_ in rounds:
            manual, autodiff = round_[f"{model}/manual"], round_[f"{model}/autodiff"]
            if "steady_epoch_s" in manual and "steady_epoch_s" in autodiff:
                wall.append(manual["steady_epoch_s"] / autodiff["steady_epoch_s"])
                cpu.append(manual["steady_epoch_cpu_s"] / autodiff["steady_epoch_cpu_s"])
        summary[model] = {"manual_over_autodiff": wall, "manual_over_autodiff_cpu": cpu,
                          "target": TARGET, "met_every_round": bool(wall) and max(wall) <= TARGET}
    print(f"\nmanual / autodiff per round (target ≤ {TARGET:.2f})")
    for model, entry in summary.items():
        wall, cpu = entry["manual_over_autodiff"], entry["manual_over_autodiff_cpu"]
        if wall:
            print(f"  {model:<11} wall " + " ".join(f"{v:.2f}" for v in wall) + f"  range {span(wall)}"
                  f"   CPU " + " ".join(f"{v:.2f}" for v in cpu) + f"  range {span(cpu)}")
    report = {"sizes": sizes, "epochs": args.epochs, "models": models, "train_rows": training_rows(args.rows),
              "rounds": rounds, "summary": summary, "machine": machine()}
    save_report("layers", report, args.results_dir)


if __name__ == "__main__":
    main()
