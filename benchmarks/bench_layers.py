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

from harness import add_results_dir_argument, compare_variants, machine, run_rounds, save_report, training_rows

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
    ratios = compare_variants(rounds, models, MODES, "manual", "autodiff")
    summary = {model: {"manual_over_autodiff": r["ratio"], "manual_over_autodiff_cpu": r["ratio_cpu"],
                       "target": TARGET, "met_every_round": bool(r["ratio"]) and max(r["ratio"]) <= TARGET}
               for model, r in ratios.items()}
    print(f"target: manual / autodiff ≤ {TARGET:.2f} in every round")
    report = {"sizes": sizes, "epochs": args.epochs, "models": models, "train_rows": training_rows(args.rows),
              "rounds": rounds, "summary": summary, "machine": machine()}
    save_report("layers", report, args.results_dir)


if __name__ == "__main__":
    main()
