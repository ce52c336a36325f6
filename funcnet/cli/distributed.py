"""Multi-process data-parallel training: ``python -m funcnet.cli.distributed``.

Start one process per host (or several on one machine), all with the same
coordinator address; each joins with ``jax.distributed.initialize``, feeds
its own contiguous shard of the rows, and ``fit`` runs on a mesh over every
device of every process, XLA doing the cross-process gradient all-reduce
(gloo on CPU, NCCL on GPU).  Two processes on one machine, two CPU devices each:

    python -m funcnet.cli.distributed --coordinator 127.0.0.1:9876 --num-processes 2 --process-id 0 \\
        --local-devices 2 --out params.npz &
    python -m funcnet.cli.distributed --coordinator 127.0.0.1:9876 --num-processes 2 --process-id 1 \\
        --local-devices 2

On GPU hosts leave out ``--local-devices`` (each process uses its GPUs).
Process 0 writes the final params to ``--out`` (a funcnet checkpoint).  The
run trains the second article's network on its regression data (``--rows``
rows, standardised), so its result can be compared with a one-process ``fit``.
"""

from __future__ import annotations

import argparse
import os


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the launcher."""
    parser = argparse.ArgumentParser(prog="python -m funcnet.cli.distributed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coordinator", required=True, help="HOST:PORT of process 0's coordinator")
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--local-devices", type=int, help="CPU devices per process (forced host devices)")
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--grad", choices=["manual", "autodiff"], default="manual")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="where process 0 writes the final params")
    return parser


def regression_problem(rows: int, seed: int):
    """The data, model and initial params every process (and a one-process reference) uses.

    ``rows`` (≥ 2) and ``seed`` (≥ 0) take any integral type.
    """
    import jax

    import funcnet as fn
    from funcnet.checks import check_count

    rows, seed = check_count(rows, "rows", 2), check_count(seed, "seed", 0)

    x, y = fn.make_regression_data(jax.random.key(seed), rows)
    x = fn.fit_standardizer(x).apply(x)
    model = fn.mlp([5, 10, 10, 1])
    return model, model.init(jax.random.key(seed + 1)), x, y


def local_rows(num_rows: int, num_processes: int, process_id: int) -> slice:
    """The contiguous block of rows process ``process_id`` feeds (integers of any integral type)."""
    from funcnet.checks import check_count

    num_rows, num_processes = check_count(num_rows, "num_rows", 0), check_count(num_processes, "num_processes")
    process_id = check_count(process_id, "process_id", 0)
    if process_id >= num_processes:
        raise ValueError(f"`process_id` must be below `num_processes` ({num_processes}), got {process_id}")
    per_process = num_rows // num_processes
    return slice(process_id * per_process, (process_id + 1) * per_process)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.local_devices:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + f" --xla_force_host_platform_device_count={args.local_devices}")
    import jax
    import numpy as np
    import optax
    from jax.sharding import PartitionSpec

    import funcnet as fn
    from funcnet import sharding

    if jax.config.jax_platforms in (None, "", "cpu") and args.local_devices:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                               process_id=args.process_id)
    try:
        mesh = sharding.auto_axes(jax.make_mesh((jax.device_count(),), ("data",)))
        model, params, x, y = regression_problem(args.rows, args.seed)
        if args.rows % args.num_processes:
            raise SystemExit(f"--rows {args.rows} must divide over {args.num_processes} processes")
        mine = local_rows(args.rows, args.num_processes, args.process_id)
        row_split = jax.sharding.NamedSharding(mesh, PartitionSpec("data"))
        x_global = jax.make_array_from_process_local_data(row_split, np.asarray(x[mine]), x.shape)
        y_global = jax.make_array_from_process_local_data(row_split, np.asarray(y[mine]), y.shape)
        trained, history = fn.fit(model, params, optax.adam(1e-2), x_global, y_global, epochs=args.epochs,
                                  batch_size=args.batch_size, key=jax.random.key(args.seed + 2),
                                  grad=args.grad, mesh=mesh)
        print(f"process {args.process_id}/{args.num_processes}: {jax.local_device_count()} local of "
              f"{jax.device_count()} devices; train_loss per epoch {history['train_loss']}", flush=True)
        if args.process_id == 0 and args.out:
            fn.save(args.out, model, jax.tree.map(np.asarray, trained), history=history)
    finally:
        jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
