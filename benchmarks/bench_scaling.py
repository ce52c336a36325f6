"""How funcnet's epoch time grows with rows and with width, against the matmul rate.

Runs ``peers.py funcnet-manual`` (fresh process, one pinned core) for
* 10k, 100k and 1M training rows at 5-10-10-1, and
* widths 10, 64, 256 and 1024 (5-w-w-1) at 80k training rows,
and reports steady s/epoch, s per million rows, and achieved GFLOP/s next to
a plain 1024³ matmul timed in the same run.

Usage: python benchmarks/bench_scaling.py [--epochs 3]
Writes benchmarks/results/scaling.json.
"""

import argparse

from harness import add_results_dir_argument, flops_per_epoch, machine, matmul_rate, run_peer, save_report, summarise

PEER = "funcnet-manual"


def measure(sizes, train_rows, epochs):
    total_rows = train_rows * 5 // 4  # peers hold out 20% as the test set
    result = run_peer(PEER, sizes, epochs, rows=total_rows)
    if "skipped" in result:
        return result
    summary = summarise(result)
    flops = flops_per_epoch(sizes, result["train_rows"])
    return {"sizes": sizes, "train_rows": result["train_rows"], "steady_epoch_s": summary["steady_epoch_s"],
            "warmup_s": summary["warmup_s"], "gflops": flops / summary["steady_epoch_s"] / 1e9,
            "gflop_per_epoch": flops / 1e9}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    add_results_dir_argument(parser)
    args = parser.parse_args()
    rate = matmul_rate()
    rows_scan = [measure([5, 10, 10, 1], rows, args.epochs) for rows in (10_000, 100_000, 1_000_000)]
    width_scan = [measure([5, width, width, 1], 80_000, args.epochs) for width in (10, 64, 256, 1024)]
    best = max(rate["jax_gflops"], rate["numpy_gflops"])
    print(f"matmul 1024³, one core: JAX {rate['jax_gflops']:.1f} GFLOP/s, NumPy {rate['numpy_gflops']:.1f} GFLOP/s")
    print(f"\n{'network':<14} {'train rows':>10} {'s/epoch':>9} {'µs/row':>7} {'GFLOP/epoch':>11} "
          f"{'GFLOP/s':>8} {'of matmul':>9}")
    for row in rows_scan + width_scan:
        if "skipped" in row:
            print(f"{row['peer']} skipped: {row['skipped']}")
            continue
        print(f"{'-'.join(map(str, row['sizes'])):<14} {row['train_rows']:>10} {row['steady_epoch_s']:>9.4f} "
              f"{row['steady_epoch_s'] / row['train_rows'] * 1e6:>7.3f} {row['gflop_per_epoch']:>11.2f} "
              f"{row['gflops']:>8.1f} {row['gflops'] / best:>8.0%}")
    report = {"rows": rows_scan, "widths": width_scan, "matmul": rate, "machine": machine()}
    save_report("scaling", report, args.results_dir)


if __name__ == "__main__":
    main()
