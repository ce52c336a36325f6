"""Run in a subprocess with 4 forced host devices: fit on a 4-device mesh vs on one device.

Prints one JSON line with the largest parameter differences and what the
arrays' shardings were.  Used by tests/test_sharding.py.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import funcnet as fn  # noqa: E402


def main():
    mesh = jax.make_mesh((4,), ("data",))
    model = fn.mlp([5, 16, 16, 1])
    x, y = fn.make_regression_data(jax.random.key(0), 1_000)
    x = fn.fit_standardizer(x).apply(x)
    params = model.init(jax.random.key(1))
    optimizer = optax.adam(1e-2)
    report = {"devices": len(jax.devices())}
    for grad in fn.engine.GRAD_MODES:
        # 1000 rows, 20% validation: 800 training rows = 25 batches of 32, no leftover;
        # 790 rows leave 22 rows (not a multiple of 4): the leftover runs unsplit
        for rows in (1000, 990):
            arguments = dict(epochs=3, batch_size=32, key=jax.random.key(2), validation_split=0.2, grad=grad)
            single, single_history = fn.fit(model, params, optimizer, x[:rows], y[:rows], **arguments)
            sharded, sharded_history = fn.fit(model, params, optimizer, x[:rows], y[:rows], mesh=mesh, **arguments)
            differences = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b)) / np.max(np.abs(a))), single, sharded)
            report[f"{grad}-{rows}"] = {
                "max_rel_param_diff": max(jax.tree.leaves(differences)),
                "loss_diff": abs(single_history["train_loss"][-1] - sharded_history["train_loss"][-1]),
                "param_sharding": str(jax.tree.leaves(sharded)[0].sharding.spec),
                "param_devices": len(jax.tree.leaves(sharded)[0].sharding.device_set),
            }
    batch = fn.sharding.shard_rows(mesh, np.asarray(x[:32]))
    report["batch_spec"] = str(batch.sharding.spec)
    report["batch_shard_shapes"] = sorted({tuple(s.data.shape) for s in batch.addressable_shards})
    epoch = fn.engine.make_train_epoch(model, optimizer, "manual", 32, mesh)
    placed = fn.sharding.replicate(mesh, (params, optimizer.init(params), x[:800], y[:800]))
    text = epoch.lower(placed[0], placed[1], placed[2], placed[3], jax.random.key(0), 0).compile().as_text()
    report["all_reduce_in_epoch"] = "all-reduce" in text
    try:
        fn.engine.make_train_epoch(model, optimizer, "manual", 30, mesh)
    except ValueError as error:
        report["batch_size_error"] = str(error)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
