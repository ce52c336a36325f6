"""Data-parallel fit on 4 forced CPU devices equals fit on one device (run in a subprocess)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ)  # the suite's XLA_FLAGS; the child adds its device count
    env["JAX_PLATFORMS"] = "cpu"
    completed = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "sharded_fit.py")],
                               capture_output=True, text=True, env=env, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["autodiff-1000", "autodiff-990", "manual-1000", "manual-990"])
def test_four_devices_give_the_params_of_one(report, case):
    assert report["devices"] == 4
    assert report[case]["max_rel_param_diff"] < 1e-5
    assert report[case]["loss_diff"] < 1e-3


def test_params_are_replicated_and_batches_split(report):
    assert report["autodiff-1000"]["param_sharding"] == "P()"
    assert report["autodiff-1000"]["param_devices"] == 4
    assert report["batch_spec"] == "P('data', None)"
    assert report["batch_shard_shapes"] == [[8, 5]]  # 32 rows over 4 devices


def test_xla_inserts_the_gradient_all_reduce(report):
    assert report["all_reduce_in_epoch"]


def test_batch_size_must_divide_over_the_devices(report):
    assert report["batch_size_error"].startswith("`batch_size=30` must be a multiple of the 4 devices")


def test_a_mesh_without_a_data_axis_is_rejected():
    import jax

    import funcnet as fn
    from funcnet.sharding import check_mesh

    mesh = jax.make_mesh((1,), ("model",))
    with pytest.raises(ValueError, match=r"`mesh` needs an axis named 'data' .* it has \['model'\]"):
        check_mesh(mesh)


def test_shard_rows_splits_the_row_axis_and_replicate_copies_everything():
    import jax
    import numpy as np
    from jax.sharding import PartitionSpec

    import funcnet as fn

    mesh = jax.make_mesh((1,), ("data",))
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    rows, columns = fn.sharding.shard_rows(mesh, x), fn.sharding.shard_rows(mesh, x.T, row_axis=1)
    assert rows.sharding.spec == PartitionSpec("data", None) and columns.sharding.spec == PartitionSpec(None, "data")
    np.testing.assert_array_equal(rows, x)
    replicated = fn.sharding.replicate(mesh, {"W": x})["W"]
    assert replicated.sharding.spec == PartitionSpec() and replicated.sharding.mesh.axis_names == ("data",)


def test_shard_rows_and_replicate_name_the_mesh_and_the_argument_order():
    import jax
    import numpy as np

    import funcnet as fn

    mesh = jax.make_mesh((1,), ("data",))
    x = np.ones((4, 2), np.float32)
    with pytest.raises(TypeError, match=r"^`mesh` must be a jax.sharding.Mesh, got ndarray, and the mesh was passed "
                                        r"second: the mesh comes first, shard_rows\(mesh, array\)$"):
        fn.sharding.shard_rows(x, mesh)
    with pytest.raises(TypeError, match=r"the mesh comes first, replicate\(mesh, tree\)$"):
        fn.sharding.replicate({"W": x}, mesh)
    for call in (fn.sharding.shard_rows, fn.sharding.replicate):  # None is no mesh here: the message must not offer it
        with pytest.raises(TypeError, match=r"^`mesh` must be a jax.sharding.Mesh with a 'data' axis \(e.g. jax."
                                            r"make_mesh\(\(jax.device_count\(\),\), \('data',\)\)\), got NoneType$"):
            call(None, x)
    with pytest.raises(ValueError, match=r"^`array` must have an axis of rows to split over the mesh's 'data' "
                                         r"devices, got a 0-d array \(a scalar\); replicate\(mesh, value\)"):
        fn.sharding.shard_rows(mesh, np.float32(1.0))
    with pytest.raises(ValueError, match=r"`mesh` needs an axis named 'data' .* it has \['model'\]"):
        fn.sharding.shard_rows(jax.make_mesh((1,), ("model",)), x)


def test_fit_offers_none_as_a_mesh():
    import jax
    import numpy as np
    import optax

    import funcnet as fn

    model = fn.mlp([2, 1])
    with pytest.raises(TypeError, match=r"`mesh` must be a jax.sharding.Mesh .*\) or None, got int$"):
        fn.fit(model, model.init(jax.random.key(0)), optax.sgd(0.1), np.ones((4, 2)), np.ones((4, 1)), epochs=1,
               key=jax.random.key(0), mesh=3)
