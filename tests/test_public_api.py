"""The public API: a top level of at most 35 names, namespaces for the diagnostic families, and every name
removed from the top level still working for one minor release with a DeprecationWarning naming its replacement.
"""

import glob
import importlib
import os
import re
import subprocess
import sys
import warnings

import pytest

import funcnet as fn
from conftest import ROOT

# funcnet 0.2's top level, every name of which must keep working.
OLD_ALL = (
    "mlp", "sequential", "Network", "MLP", "Layer", "dense", "dropout", "layer_norm", "activation_layer", "layer",
    "Activation", "activation", "get_activation", "ACTIVATION_NAMES", "Loss", "loss", "huber", "get_loss",
    "LOSS_NAMES", "GRAD_MODES", "make_train_step", "make_train_epoch", "value_and_grad_fn", "step_key", "fit",
    "fit_state", "NonFiniteLossError", "EarlyStopping", "shuffled_batches", "shuffled_batch_rows", "check_data",
    "fit_many", "stacked_init", "with_hyperparam", "shard_rows", "replicate", "layer_stats", "LAYER_STAT_NAMES",
    "stats_rows", "stats_key", "predict", "predict_labels", "evaluate", "make_regression_data", "xor_data",
    "train_test_split", "Standardizer", "fit_standardizer", "trace_backprop", "BackpropTrace", "LayerTrace",
    "TracedQuantity", "worked_example_network", "compare_grads", "compare_grad_trees", "manual_and_autodiff",
    "finite_difference_grad", "format_differences", "LeafDifference", "check_activation", "check_loss",
    "check_layer", "DerivativeReport", "save", "load", "Checkpoint", "CheckpointError", "plot_history",
    "plot_layer_stats", "plot_decision_boundary", "decision_grid",
)

# Each removed name -> the spelling its warning names (``fn.`` a public namespace, ``funcnet.`` a module path).
REPLACEMENTS = {
    **{name: f"fn.gradcheck.{name}" for name in ("compare_grads", "compare_grad_trees", "manual_and_autodiff",
                                                 "finite_difference_grad", "format_differences", "LeafDifference")},
    **{name: f"fn.derivative_checks.{name}"
       for name in ("check_activation", "check_loss", "check_layer", "DerivativeReport")},
    **{name: f"fn.trace.{name}"
       for name in ("trace_backprop", "BackpropTrace", "LayerTrace", "TracedQuantity", "worked_example_network")},
    **{name: f"fn.plots.{name}"
       for name in ("plot_history", "plot_layer_stats", "plot_decision_boundary", "decision_grid")},
    "ACTIVATION_NAMES": "fn.activations.ACTIVATION_NAMES", "get_activation": "fn.activations.get_activation",
    "LOSS_NAMES": "fn.losses.LOSS_NAMES", "get_loss": "fn.losses.get_loss", "huber": "fn.losses.huber",
    "activation_layer": "fn.layers.activation_layer",
    "shard_rows": "fn.sharding.shard_rows", "replicate": "fn.sharding.replicate",
    "MLP": "fn.Network",
    **{name: f"funcnet.engine.{name}"
       for name in ("GRAD_MODES", "make_train_epoch", "value_and_grad_fn", "step_key", "shuffled_batch_rows")},
    "fit_state": "fn.fit, whose result carries .opt_state",
    **{name: f"funcnet.layer_stats.{name}" for name in ("LAYER_STAT_NAMES", "stats_rows", "stats_key")},
}
# Names whose replacement is another API, not the same object under a new name: where the old object still is
# (itself deprecated when called).
STILL_AT = {"fit_state": "funcnet.fitting.fit_state"}

# Each namespace -> what it promises, and the module that defines each of those names.
NAMESPACES = {
    "gradcheck": {name: "gradcheck" for name in ("compare_grads", "compare_grad_trees", "manual_and_autodiff",
                                                 "finite_difference_grad", "format_differences", "LeafDifference")},
    "derivative_checks": {name: "derivative_checks"
                          for name in ("check_activation", "check_loss", "check_layer", "DerivativeReport")},
    "trace": {name: "trace" for name in ("trace_backprop", "BackpropTrace", "LayerTrace", "TracedQuantity",
                                         "worked_example_network")},
    "plots": {"plot_history": "plotting", "plot_layer_stats": "layer_stats",
              "plot_decision_boundary": "decision_boundary", "decision_grid": "decision_boundary"},
    "activations": {"ACTIVATION_NAMES": "activations", "get_activation": "activations", "relu": "activations"},
    "losses": {"LOSS_NAMES": "losses", "get_loss": "losses", "huber": "losses"},
    "layers": {"activation_layer": "layers", "dense": "layers"},
    "sharding": {"shard_rows": "sharding", "replicate": "sharding"},
}


def resolve(spelling):
    """The object a replacement spelling names: ``fn.a.b`` by attributes, ``funcnet.module.name`` by import."""
    *path, name = spelling.split(".")
    if path[0] == "fn":
        owner = fn
        for part in path[1:]:
            owner = getattr(owner, part)
        return getattr(owner, name)
    return getattr(importlib.import_module(".".join(path)), name)


def test_the_top_level_has_at_most_35_names_without_repeats():
    assert len(fn.__all__) <= 35
    assert len(set(fn.__all__)) == len(fn.__all__)


def test_every_public_name_and_namespace_resolves_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in fn.__all__:
            assert getattr(fn, name) is not None, name
        for namespace in NAMESPACES:
            assert getattr(fn, namespace).__name__ == f"funcnet.{namespace}"


def test_the_removed_names_are_the_old_top_level_less_the_new_one():
    assert set(fn.__all__) <= set(OLD_ALL)
    assert set(REPLACEMENTS) == set(OLD_ALL) - set(fn.__all__)


@pytest.mark.parametrize("name", sorted(REPLACEMENTS))
def test_a_removed_name_warns_naming_its_replacement_and_is_the_same_object(name):
    replacement = REPLACEMENTS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the replacement itself must not warn
        expected = resolve(STILL_AT.get(name, replacement))
    for _ in range(2):  # every use warns: nothing is cached on the package
        with pytest.warns(DeprecationWarning, match=rf"^fn\.{name} is deprecated: use {re.escape(replacement)}\b"):
            value = getattr(fn, name)
        assert value is expected


def test_the_deprecation_warning_points_at_the_code_that_used_the_name():
    with pytest.warns(DeprecationWarning) as records:
        fn.compare_grads  # noqa: B018
    assert records[0].filename == __file__


def test_from_funcnet_import_a_removed_name_warns_and_works():
    with pytest.warns(DeprecationWarning, match="use fn.gradcheck.compare_grads"):
        from funcnet import compare_grads
    assert compare_grads is fn.gradcheck.compare_grads


def test_star_import_gives_exactly_all_and_no_warning():
    names = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec("from funcnet import *", names)
    assert set(names) - {"__builtins__"} == set(fn.__all__)


def test_dir_lists_all_and_the_namespaces_and_no_removed_name():
    listed = set(dir(fn))
    assert set(fn.__all__) | set(NAMESPACES) <= listed
    assert not listed & set(REPLACEMENTS)
    assert {name for name in listed if not name.startswith("__")} == set(fn.__all__) | set(NAMESPACES)


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_a_namespace_holds_what_it_promises(namespace):
    module = getattr(fn, namespace)
    for name, home in NAMESPACES[namespace].items():
        assert getattr(module, name) is getattr(importlib.import_module(f"funcnet.{home}"), name), name


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_a_namespace_lists_its_promises_in_all_and_star_imports_only_them(namespace):
    """``__all__`` is the namespace's promise: every name there resolves, the names this file pins are in it, and
    ``from funcnet.<namespace> import *`` brings nothing else (no ``jax``, ``np`` or helpers)."""
    module = getattr(fn, namespace)
    assert set(NAMESPACES[namespace]) <= set(module.__all__)
    names = {}
    exec(f"from funcnet.{namespace} import *", names)  # noqa: S102
    assert set(names) - {"__builtins__"} == set(module.__all__)


def test_the_plots_namespace_exports_its_pictures():
    assert set(fn.plots.__all__) == set(NAMESPACES["plots"])


def test_an_unknown_name_raises_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="module 'funcnet' has no attribute 'no_such_name'"):
        fn.no_such_name  # noqa: B018


def test_import_funcnet_and_its_api_listing_import_no_jax():
    script = ("import sys, funcnet\n"
              "names = list(funcnet.__all__) + dir(funcnet)\n"
              "assert 'jax' not in sys.modules, 'import funcnet imported jax'\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                               env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=120)
    assert completed.returncode == 0, completed.stderr


def shipped_files():
    return sorted(glob.glob(os.path.join(ROOT, "examples", "*.py"))
                  + glob.glob(os.path.join(ROOT, "benchmarks", "*.py")) + [os.path.join(ROOT, "README.md")])


def test_nothing_the_project_ships_uses_a_removed_name():
    removed = "|".join(sorted(REPLACEMENTS, key=len, reverse=True))
    spelling = re.compile(rf"\b(?:fn|funcnet)\.({removed})\b|from funcnet import [^\n]*\b({removed})\b")
    found = [f"{os.path.relpath(path, ROOT)}: {match.group(0)}" for path in shipped_files()
             for match in spelling.finditer(open(path, encoding="utf-8").read())]
    assert not found


def test_the_librarys_own_text_names_no_removed_spelling():
    removed = "|".join(sorted(fn._DEPRECATED, key=len, reverse=True))
    spelling = re.compile(rf"\b(?:fn|funcnet)\.({removed})\b|from funcnet import [^\n]*\b({removed})\b")
    sources = sorted(glob.glob(os.path.join(ROOT, "funcnet", "**", "*.py"), recursive=True))
    found = [f"{os.path.relpath(path, ROOT)}:{number}: {match.group(0)}" for path in sources
             for number, line in enumerate(open(path, encoding="utf-8"), 1) for match in spelling.finditer(line)]
    assert sources and not found
