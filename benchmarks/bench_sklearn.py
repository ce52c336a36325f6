"""funcnet.sklearn against scikit-learn's own MLPClassifier/MLPRegressor: score, speed, grid search.

Same session, same hyperparameters (scikit-learn's defaults: one hidden layer
of 100 ReLUs, Adam, lr 1e-3, alpha 1e-4, batch "auto" = min(200, n)), same
stopping rule (tol / n_iter_no_change on the training loss):

* **score**: digits, breast cancer, wine, iris (accuracy) and diabetes (R²,
  targets standardised on the training rows), 75/25 split per seed,
  StandardScaler on the training rows, max_iter 500; mean test score over
  ``--seeds`` seeds;
* **speed**: 100,000 synthetic rows (``make_classification`` and
  ``make_regression``, 20 features; 80,000 train / 20,000 test), batch 200,
  200 epochs with the stopping rule switched off for both
  (``n_iter_no_change=200``) so both run exactly 200 epochs.  funcnet runs in
  a fresh process: "end to end" is its first ``fit`` (compilation included),
  "per epoch" a second ``fit`` in the same process divided by 200.  The
  float32 matmul floor is one jitted ``lax.scan`` over the epoch's 400
  batches doing only the five products of a 20-100-k step (forward ``XW₁``,
  ``HW₂``; backward ``Hᵀδ``, ``δW₂ᵀ``, ``Xᵀδ₁``), in the batch-first and in
  the column-major layout, each compiled for XLA's default and for 512-bit
  vectors; the fastest of the four counts;
* **epoch** (only when asked for in ``--parts``): where a shuffled epoch's
  CPU time goes: the floor, the same fit with ``shuffle=False``, and the
  permutation alone;
* **order** (only when asked for): scikit-learn's own spread in the score
  table from the batch order alone: the same seeds, splits and initial
  weights, with the shuffles drawn from ``--streams`` other streams;
* **search**: a 3-fold ``GridSearchCV`` over 12 candidates (learning rate x
  alpha x 2 seeds) on digits, max_iter 30, both libraries.

Run pinned, as every benchmark here:

    taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python benchmarks/bench_sklearn.py [--rounds 3] [--seeds 5]

Writes benchmarks/results/sklearn.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

from harness import add_results_dir_argument, machine, save_report, single_core_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # this checkout's funcnet, not an installed copy
EPOCHS = 200


def classification_data(rows):
    from sklearn.datasets import make_classification

    features, labels = make_classification(rows, n_features=20, n_informative=10, random_state=0)
    return features.astype(np.float32), labels


def regression_data(rows):
    from sklearn.datasets import make_regression

    features, targets = make_regression(rows, n_features=20, n_informative=10, noise=10.0, random_state=0)
    return features.astype(np.float32), ((targets - targets.mean()) / targets.std()).astype(np.float32)


def split_and_scale(features, targets, seed, scale_targets=False):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, y_test = train_test_split(features, targets, test_size=0.2 if seed is None else 0.25,
                                                        random_state=0 if seed is None else seed)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train).astype(np.float32), scaler.transform(x_test).astype(np.float32)
    if scale_targets:
        mean, std = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / std, (y_test - mean) / std
    return x_train, x_test, y_train, y_test


def estimators(task, **params):
    from sklearn.neural_network import MLPClassifier as SkClassifier, MLPRegressor as SkRegressor

    from funcnet.sklearn import MLPClassifier, MLPRegressor

    if task == "classification":
        return {"scikit-learn": SkClassifier(**params), "funcnet": MLPClassifier(**params)}
    return {"scikit-learn": SkRegressor(**params), "funcnet": MLPRegressor(**params)}


# ----------------------------------------------------------------------------- score on shipped datasets
def shipped_datasets():
    """``name -> (loader, task)`` for the five datasets scikit-learn ships."""
    from sklearn import datasets

    return {"digits": (datasets.load_digits, "classification"), "breast cancer":
            (datasets.load_breast_cancer, "classification"), "wine": (datasets.load_wine, "classification"),
            "iris": (datasets.load_iris, "classification"), "diabetes": (datasets.load_diabetes, "regression")}


def score_table(seeds):
    rows = []
    for name, (loader, task) in shipped_datasets().items():
        features, targets = loader(return_X_y=True)
        scores, seconds = {"scikit-learn": [], "funcnet": []}, {"scikit-learn": [], "funcnet": []}
        iterations = {"scikit-learn": [], "funcnet": []}
        for seed in range(seeds):
            x_train, x_test, y_train, y_test = split_and_scale(features.astype(np.float32), targets, seed,
                                                               scale_targets=task == "regression")
            for library, model in estimators(task, max_iter=500, random_state=seed).items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(x_train, y_train)
                seconds[library].append(time.perf_counter() - start)
                scores[library].append(float(model.score(x_test, y_test)))
                iterations[library].append(model.n_iter_)
        row = {"dataset": name, "metric": "accuracy" if task == "classification" else "R²"}
        for library in scores:
            row[library] = {"mean_score": float(np.mean(scores[library])), "scores": scores[library],
                            "fit_seconds": float(np.median(seconds[library])),
                            "n_iter": iterations[library]}
        rows.append(row)
        print(f"{name:14s} {row['metric']:8s} scikit-learn {row['scikit-learn']['mean_score']:.4f} "
              f"funcnet {row['funcnet']['mean_score']:.4f}  (fit s: {row['scikit-learn']['fit_seconds']:.2f} vs "
              f"{row['funcnet']['fit_seconds']:.2f})", flush=True)
    return rows


def order_spread(seeds, streams, score_rows=None):
    """scikit-learn's own test-score spread from batch order alone: same splits, same initial weights.

    scikit-learn draws the initial weights and then every epoch's shuffle from
    one ``RandomState(random_state)``.  Here its module's ``shuffle`` is
    pointed at a second ``RandomState(1000 · stream + seed)``, so stream ``s``
    of seed ``seed`` keeps that seed's split and starting weights and changes
    only which rows share a batch, as funcnet's own shuffle does.  The means
    over ``seeds`` seeds, one per stream, show how far the score of one fixed
    model moves with the batch order alone.  Wine and iris are left out: their
    training split fits in one batch, where the order changes only rounding.
    """
    import sklearn.neural_network._multilayer_perceptron as sk_mlp
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.utils import shuffle

    if getattr(sk_mlp, "shuffle", None) is not shuffle:
        raise RuntimeError("this scikit-learn's MLP does not shuffle through "
                           "sklearn.neural_network._multilayer_perceptron.shuffle; the order part needs it")
    funcnet_means = {row["dataset"]: row["funcnet"]["mean_score"] for row in score_rows or []}
    own_means = {row["dataset"]: row["scikit-learn"]["mean_score"] for row in score_rows or []}
    rows = []
    for name, (loader, task) in shipped_datasets().items():
        if name in ("wine", "iris"):
            continue
        features, targets = loader(return_X_y=True)
        model_class = MLPClassifier if task == "classification" else MLPRegressor
        row = {"dataset": name, "streams": []}
        for stream in range(1, streams + 1):
            scores = []
            for seed in range(seeds):
                x_train, x_test, y_train, y_test = split_and_scale(features.astype(np.float32), targets, seed,
                                                                   scale_targets=task == "regression")
                order_rng = np.random.RandomState(1000 * stream + seed)
                sk_mlp.shuffle = lambda *arrays, random_state=None, **options: shuffle(
                    *arrays, random_state=order_rng, **options)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = model_class(max_iter=500, random_state=seed).fit(x_train, y_train)
                finally:
                    sk_mlp.shuffle = shuffle
                scores.append(float(model.score(x_test, y_test)))
            row["streams"].append({"stream": stream, "mean_score": float(np.mean(scores)), "scores": scores})
        rows.append(row)
        means = " ".join(f"{entry['mean_score']:.4f}" for entry in row["streams"])
        known = (f" (own stream {own_means[name]:.4f}, funcnet {funcnet_means[name]:.4f})"
                 if name in funcnet_means else "")
        print(f"{name:14s} scikit-learn over {seeds} seeds with {streams} other shuffle streams: {means}{known}",
              flush=True)
    return rows


# ----------------------------------------------------------------------------- speed on 100k rows
SPEED_PARAMS = dict(batch_size=200, max_iter=EPOCHS, n_iter_no_change=EPOCHS, random_state=0)


def funcnet_speed_child(task, rows, shuffle=True):
    """Runs in a fresh process: a cold fit (compilation included), then a warm one; prints JSON."""
    start = time.perf_counter()
    from funcnet.sklearn import MLPClassifier, MLPRegressor

    data = classification_data(rows) if task == "classification" else regression_data(rows)
    x_train, x_test, y_train, y_test = split_and_scale(*data, None)
    model_class = MLPClassifier if task == "classification" else MLPRegressor
    params = dict(SPEED_PARAMS, shuffle=shuffle)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_start, cpu_start = time.perf_counter(), time.process_time()
        model = model_class(**params).fit(x_train, y_train)
        cold, cold_cpu = time.perf_counter() - fit_start, time.process_time() - cpu_start
        fit_start, cpu_start = time.perf_counter(), time.process_time()
        model_class(**params).fit(x_train, y_train)
        warm, warm_cpu = time.perf_counter() - fit_start, time.process_time() - cpu_start
    print(json.dumps({"end_to_end": cold, "end_to_end_cpu": cold_cpu, "per_epoch": warm / EPOCHS,
                      "per_epoch_cpu": warm_cpu / EPOCHS, "n_iter": model.n_iter_,
                      "score": float(model.score(x_test, y_test)), "process_seconds": time.perf_counter() - start}))


def sklearn_speed(task, rows):
    data = classification_data(rows) if task == "classification" else regression_data(rows)
    x_train, x_test, y_train, y_test = split_and_scale(*data, None)
    model = estimators(task, **SPEED_PARAMS)["scikit-learn"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, cpu_start = time.perf_counter(), time.process_time()
        model.fit(x_train, y_train)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"end_to_end": seconds, "end_to_end_cpu": cpu, "per_epoch": seconds / model.n_iter_,
            "per_epoch_cpu": cpu / model.n_iter_, "n_iter": model.n_iter_, "score": float(model.score(x_test, y_test))}


def funcnet_speed(task, rows, shuffle=True):
    command = [sys.executable, os.path.abspath(__file__), "--child", task, "--rows", str(rows),
               *([] if shuffle else ["--no-shuffle"])]
    completed = subprocess.run(command, capture_output=True, text=True, env=single_core_env(), cwd=ROOT,
                               timeout=3600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"funcnet speed run failed: {completed.stderr[-2000:]}")
    return json.loads(lines[-1])


def matmul_floor(task, rows, repeats=7, outputs=1):
    """CPU seconds of the epoch's matmuls alone (five per batch), best of ``repeats``, best layout and vector width.

    The network is 20-100-``outputs`` (1 for the estimators' both tasks; ``bench_engine`` also asks for 2).

    Each layout is compiled with XLA's default vector width and with the
    512 bits the estimators' epoch uses (:mod:`funcnet.xla_options`); the fastest of
    the four counts, so the floor is never slower than what funcnet compiles.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    n_train, width, batch = rows - rows // 5, 100, 200
    batches = n_train // batch
    x = jnp.asarray(np.random.default_rng(0).standard_normal((batches, batch, 20)), jnp.float32)
    w1, w2 = jnp.full((20, width), 0.01, jnp.float32), jnp.full((width, outputs), 0.01, jnp.float32)

    def epoch(layout):
        def body(weights, xb):
            w1, w2 = weights
            if layout == "rows":
                hidden = xb @ w1
                out = hidden @ w2
                dw2, dhidden = hidden.T @ out, out @ w2.T
                dw1 = xb.T @ dhidden
            else:  # funcnet's dense layout: Zᵀ = Wᵀ Xᵀ with the transposes materialised
                xt = lax.optimization_barrier(xb.T)
                hidden = lax.optimization_barrier(w1.T) @ xt
                out = lax.optimization_barrier(w2.T) @ hidden
                dw2, dhidden = hidden @ out.T, w2 @ out
                dw1 = xt @ dhidden.T
            return (w1 - 1e-9 * dw1, w2 - 1e-9 * dw2), None  # keeps every product live
        return jax.jit(lambda w1, w2, x: lax.scan(body, (w1, w2), x)[0])

    best = {}
    for layout in ("rows", "columns"):
        for width in (None, 512):
            lowered = epoch(layout).lower(w1, w2, x)
            compiled = lowered.compile({"xla_cpu_prefer_vector_width": width} if width else None)
            jax.block_until_ready(compiled(w1, w2, x))
            times = []
            for _ in range(repeats):
                start = time.process_time()
                jax.block_until_ready(compiled(w1, w2, x))
                times.append(time.process_time() - start)
            best[layout if width is None else f"{layout}_{width}"] = min(times)
    return {"floor": min(best.values()), **{f"floor_{name}": value for name, value in best.items()}}


def speed_rounds(rounds, rows):
    results = []
    for round_index in range(rounds):
        for task in ("classification", "regression"):
            order = ("funcnet", "scikit-learn") if round_index % 2 == 0 else ("scikit-learn", "funcnet")
            entry = {"round": round_index + 1, "task": task}
            for library in order:
                entry[library] = funcnet_speed(task, rows) if library == "funcnet" else sklearn_speed(task, rows)
            entry.update(matmul_floor(task, rows))
            sk, ours = entry["scikit-learn"], entry["funcnet"]
            entry["epoch_speedup"] = sk["per_epoch"] / ours["per_epoch"]
            entry["epoch_speedup_cpu"] = sk["per_epoch_cpu"] / ours["per_epoch_cpu"]
            entry["end_to_end_speedup"] = sk["end_to_end"] / ours["end_to_end"]
            entry["vs_floor_cpu"] = ours["per_epoch_cpu"] / entry["floor"]
            results.append(entry)
            print(f"round {round_index + 1} {task:14s} per epoch: scikit-learn {sk['per_epoch']:.4f} s, funcnet "
                  f"{ours['per_epoch']:.4f} s ({entry['epoch_speedup']:.1f}x; CPU {entry['epoch_speedup_cpu']:.1f}x), "
                  f"floor {entry['floor']:.4f} s (funcnet CPU {entry['vs_floor_cpu']:.2f}x floor); 200 epochs: "
                  f"{sk['end_to_end']:.1f} s vs {ours['end_to_end']:.1f} s ({entry['end_to_end_speedup']:.1f}x); "
                  f"score {sk['score']:.4f} vs {ours['score']:.4f}", flush=True)
    return results


def permutation_seconds(rows, repeats=20):
    """CPU seconds of one epoch's shuffle alone: ``funcnet.shuffle.permutation`` of the training rows, best of ``repeats``."""
    import jax

    from funcnet.shuffle import permutation
    from funcnet.xla_options import epoch_compiler_options

    n_train = rows - rows // 5
    shuffle = jax.jit(lambda key, epoch: permutation(key, n_train, stream=epoch),
                      compiler_options=epoch_compiler_options())  # as the epoch compiles it
    key = jax.random.key(0)
    jax.block_until_ready(shuffle(key, 0))
    times = []
    for epoch in range(repeats):
        start = time.process_time()
        jax.block_until_ready(shuffle(key, epoch))
        times.append(time.process_time() - start)
    return min(times)


def epoch_parts(rounds, rows):
    """Where a shuffled epoch's time goes: the matmul floor, the same epoch without shuffling, the shuffle alone.

    ``shuffle=False`` reads the batches straight from ``x``, so
    ``shuffled − unshuffled`` is the permutation plus writing every row to its
    shuffled slot.  CPU seconds per epoch (warm 200-epoch fits).
    """
    results = []
    for round_index in range(rounds):
        for task in ("classification", "regression"):
            entry = {"round": round_index + 1, "task": task, **matmul_floor(task, rows),
                     "permutation": permutation_seconds(rows)}
            for name, shuffle in (("shuffled", True), ("unshuffled", False)):
                entry[name] = funcnet_speed(task, rows, shuffle)["per_epoch_cpu"]
            results.append(entry)
            print(f"round {round_index + 1} {task:14s} CPU s/epoch: floor {entry['floor']:.4f}, unshuffled "
                  f"{entry['unshuffled']:.4f} ({entry['unshuffled'] / entry['floor']:.2f}x floor), shuffled "
                  f"{entry['shuffled']:.4f} ({entry['shuffled'] / entry['floor']:.2f}x floor); shuffling adds "
                  f"{entry['shuffled'] - entry['unshuffled']:.4f}, of which the permutation {entry['permutation']:.4f}",
                  flush=True)
    return results


# ----------------------------------------------------------------------------- grid search
def search_times(rounds):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.preprocessing import StandardScaler

    features, labels = load_digits(return_X_y=True)
    features = StandardScaler().fit_transform(features).astype(np.float32)
    grid = {"learning_rate_init": [1e-3, 3e-3, 1e-2], "alpha": [1e-4, 1e-2], "random_state": [0, 1]}
    results = []
    for round_index in range(rounds):
        entry = {"round": round_index + 1}
        for library, model in estimators("classification", max_iter=30).items():
            search = GridSearchCV(model, grid, cv=KFold(3, shuffle=True, random_state=0))
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                search.fit(features, labels)
            entry[library] = {"seconds": time.perf_counter() - start, "best_score": float(search.best_score_)}
        results.append(entry)
        print(f"round {round_index + 1} GridSearchCV 3-fold x 12 on digits: scikit-learn "
              f"{entry['scikit-learn']['seconds']:.1f} s (best {entry['scikit-learn']['best_score']:.4f}), funcnet "
              f"{entry['funcnet']['seconds']:.1f} s (best {entry['funcnet']['best_score']:.4f}; first round "
              "includes compilation)", flush=True)
    return results


PARTS = ("score", "order", "speed", "epoch", "search")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds")
    parser.add_argument("--search-rounds", type=int, default=2, help="grid-search rounds")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per dataset for the score table")
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic rows for the speed runs")
    parser.add_argument("--streams", type=int, default=3, help="other shuffle streams for the order part")
    parser.add_argument("--parts", default="score,speed,search",
                        help="which parts to run: score, speed, search, epoch (where a shuffled epoch's time "
                             "goes) and order (scikit-learn's own score spread from batch order)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--no-shuffle", action="store_true", help=argparse.SUPPRESS)
    add_results_dir_argument(parser)
    args = parser.parse_args()
    if args.child:
        return funcnet_speed_child(args.child, args.rows, shuffle=not args.no_shuffle)
    parts = [part.strip() for part in args.parts.split(",")]
    unknown = [part for part in parts if part not in PARTS]
    if unknown:  # a typo such as "speeds" would otherwise run nothing and write an empty report
        parser.error(f"--parts: unknown part {unknown[0]!r}; expected a comma-separated list of {', '.join(PARTS)}")
    report = {"machine": machine(), "affinity": sorted(os.sched_getaffinity(0)), "rows": args.rows}
    if "score" in parts:
        report["score"] = score_table(args.seeds)
    if "order" in parts:
        report["order"] = order_spread(args.seeds, args.streams, report.get("score"))
    if "speed" in parts:
        report["speed"] = speed_rounds(args.rounds, args.rows)
    if "epoch" in parts:
        report["epoch_parts"] = epoch_parts(args.rounds, args.rows)
    if "search" in parts:
        report["search"] = search_times(args.search_rounds)
    save_report("sklearn", report, args.results_dir)


if __name__ == "__main__":
    main()
