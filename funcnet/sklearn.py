"""scikit-learn estimators: ``MLPRegressor`` and ``MLPClassifier`` on funcnet's networks and training step.

Import this module explicitly (``from funcnet.sklearn import MLPClassifier``);
``import funcnet`` does not import scikit-learn, which is the optional extra
``funcnet[sklearn]``.

The parameters keep scikit-learn's ``MLPClassifier``/``MLPRegressor`` names
and meanings (``hidden_layer_sizes``, ``activation``, ``solver`` "adam" or
"sgd", ``alpha``, ``batch_size``, ``learning_rate_init``, ``max_iter``,
``shuffle``, ``random_state``, ``tol``, ``early_stopping``,
``validation_fraction``, ``n_iter_no_change``, ``verbose``, ``warm_start``,
``momentum``, ``nesterovs_momentum``, ``beta_1``, ``beta_2``, ``epsilon``)
and add funcnet's: ``grad`` ("manual", the hand-written backprop of
:mod:`funcnet.backprop`, or "autodiff", ``jax.grad``), ``dropout``, ``loss``
(regressor: mse, mae, huber), ``class_weight`` (classifier) and ``dtype``.

The objective is scikit-learn's, batch by batch.  For a batch of ``m`` rows
(``m = Σ_batch w_i`` with sample weights) and weights ``W`` of every layer:

    J = s · L_data + (α / 2m) Σ_layers ‖W‖²            ∂J/∂W = s · ∂L_data/∂W + (α/m) W

This is scikit-learn's ``_backprop``: it adds ``0.5 · alpha · ‖W‖² / n_batch``
to each batch's loss and ``alpha · W / n_batch`` to each weight gradient
(``sklearn/neural_network/_multilayer_perceptron.py``, ``_backprop`` and
``_compute_loss_grad``).  funcnet's own ``l2=λ`` is a fixed ``(λ/2) ‖W‖²``
baked into the model; here ``α`` is passed to the compiled epoch as data
(``λ = α/m`` for that batch), so a grid over ``alpha`` reuses one program.
``L_data`` is funcnet's batch-mean loss (``Σ w_i ℓ_i / Σ w_i`` with weights)
and ``s`` matches scikit-learn's scale: ``s = ½`` for ``loss="mse"``
(scikit-learn's squared error is ``½ mean (y − ŷ)²``), ``s = k`` for
multilabel log-loss over ``k`` outputs (scikit-learn sums over outputs,
funcnet averages), else ``s = 1`` (binary log-loss, cross-entropy, mae,
huber).  So ``loss_curve_`` is on scikit-learn's scale and ``tol`` means the
same.  (For ``k > 1`` regression outputs scikit-learn's gradient is
``(ŷ − y)/m``, which is ``k`` times the gradient of the loss it reports;
funcnet uses the exact gradient of the reported loss.)

Stopping follows scikit-learn's ``_fit_stochastic``: after every epoch, with
``early_stopping=False`` the epoch's training loss counts as no improvement
when it is above ``best_loss_ − tol``; with ``early_stopping=True`` the score
(accuracy or R²) on ``validation_fraction`` of the rows (scikit-learn's
split: the same rows for the same ``random_state``, stratified only for two
classes, as scikit-learn does) counts as no improvement when it is below
``best_validation_score_ + tol``, and the best epoch's weights are kept.
Training stops when more than ``n_iter_no_change`` epochs in a row did not
improve, or after ``max_iter`` epochs with a ``ConvergenceWarning``.

Speed and compilation: the estimators train through funcnet's one training
epoch, :func:`funcnet.engine.epoch_function` (the function ``fn.fit`` and
``fit_many`` compile too), with their options: the objective above
(``s`` static, ``α`` an input), ``train_loss`` weighed by rows, shuffling on
or off.  One epoch is one compiled call (the shuffle, a ``lax.scan`` over
full batches, the last short batch), cached on the static structure only
(layer sizes, activations, loss, dropout, ``grad``, solver, batch size,
shuffling).  The learning rate, ``beta_1``, ``beta_2``, ``epsilon`` and
``momentum`` live in the optimizer state (``optax.inject_hyperparams``) and
``alpha`` is an argument, so hyperparameter searches and every clone share
compiled programs.  The epoch is compiled at top level for 512-bit vectors on
CPU (:mod:`funcnet.xla_options`).  The epoch carries the parameters as one
flat vector and the optimizer updates it (``EpochOptions.flat_params``): Adam's
update is then one fused loop instead of one per leaf.  A shuffled epoch writes each training row to its
shuffled slot once (:func:`funcnet.engine.shuffled_copy`) and then reads the
batches in order, so the device holds one shuffled copy of ``X`` (and ``y``,
weights) while it trains.  The order is ``fn.fit``'s: slot ``j`` of epoch
``e`` holds row ``π(j)``, ``π = permutation(key, n, stream=e)``; when every
row fits in one batch the rows are not shuffled (the order would change only
the sums' rounding).  Nothing compiled is stored on an estimator, so fitted
estimators pickle and clone.

Weights start as scikit-learn's do (uniform Glorot, biases too, drawn from
``random_state`` in its order), so both libraries start from the same
weights.  Differences by design: the shuffles come from a key drawn from
``random_state`` (funcnet's on-device permutation); Adam is optax's, whose ``ε`` is added to
``√v̂`` where scikit-learn adds it to ``√v`` (the same up to ``ε``);
negative ``sample_weight`` entries are refused (scikit-learn trains on
them; funcnet's ``fit`` and ``class_weight`` refuse them too);
``partial_fit`` refuses labels outside ``classes`` from its first call on;
``solver="lbfgs"`` and the ``learning_rate`` schedules are not offered.
As scikit-learn, a warm start (``warm_start=True`` or ``partial_fit``)
keeps the fitted layer sizes and uses the current ``activation`` (and
``dropout``, and the regressor's ``loss``: ``loss_curve_`` goes on in the
new loss's values); a changed ``dtype`` is refused, since the fitted weights
go on in theirs.  Values of ``X``, ``y`` or ``sample_weight`` that become
infinite in ``dtype`` (float64 input beyond float32's ~3.4e38) are refused,
in ``fit`` and in ``predict``: scikit-learn computes in float64 there.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import numpy as np
import optax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from funcnet.activations import ACTIVATION_NAMES
from funcnet.checks import check_fits
from funcnet.engine import GRAD_MODES, EpochOptions, compiled_epoch
from funcnet.fitting import row_weights
from funcnet.model import mlp
from funcnet.row_chunks import concatenate_real_rows, map_row_chunks

__all__ = ["MLPRegressor", "MLPClassifier"]

SOLVERS = ("adam", "sgd")
REGRESSION_LOSSES = ("mse", "mae", "huber")
# scikit-learn's activation names; funcnet's own names are accepted too
SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
PREDICT_CHUNK = 1024  # rows per compiled prediction call: one program for any number of rows
FITS_ADVICE = "Scale the data (e.g. StandardScaler), or use dtype='float64' with JAX's x64 mode on"


# ----------------------------------------------------------------------------- compiled pieces (module level)
@functools.lru_cache(maxsize=None)
def _network(sizes: tuple, hidden: tuple, output: str, loss: str, dropout: float):
    """The funcnet network for one architecture (hashable, shared by every estimator that has it)."""
    return mlp(list(sizes), hidden=list(hidden), output=output, loss=loss, dropout=dropout)


@functools.lru_cache(maxsize=None)
def _optimizer(solver: str, nesterov: bool):
    """The optax transformation (run on one flat vector of every parameter: ``EpochOptions.flat_params``);
    its numeric hyperparameters live in its state, so one serves every value."""
    if solver == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8)
    return optax.inject_hyperparams(optax.sgd)(learning_rate=1e-3, momentum=0.9, nesterov=nesterov)


def _initial_optimizer_state(solver, nesterov, num_params: int, dtype, hyperparams: dict):
    """The optimizer's initial state for a flat vector of ``num_params`` parameters, as NumPy arrays.

    optax's Adam and SGD states start at zero; the shapes come from
    ``jax.eval_shape`` (a trace, no compilation) and the estimator's
    hyperparameters are written into ``state.hyperparams``.
    """
    shapes = jax.eval_shape(_optimizer(solver, nesterov).init, jax.ShapeDtypeStruct((num_params,), dtype))
    state = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)
    return state._replace(hyperparams={name: np.asarray(value, dtype) for name, value in hyperparams.items()})


def _initial_params(network, rng, dtype) -> list:
    """scikit-learn's initialisation, drawn with NumPy from ``rng`` (a ``RandomState``): no compilation.

    As ``MLPClassifier._init_coef``: layer by layer, weights ``(n_in, n_out)``
    then biases ``(n_out,)`` from ``U(−r, r)`` with ``r = √(f / (n_in + n_out))``,
    ``f = 2`` for logistic hidden units and 6 otherwise.  The same
    ``random_state`` therefore starts from scikit-learn's very weights.
    Dropout layers get ``{}``.
    """
    hidden = network.hidden_activations
    factor = 2.0 if hidden and hidden[0] == "sigmoid" else 6.0
    params, width = [], network.n_in
    for layer in network.layers:
        if layer.name != "dense":
            params.append({})
            continue
        units = dict(layer.config)["units"]
        bound = math.sqrt(factor / (width + units))
        weights = rng.uniform(-bound, bound, (width, units))
        bias = rng.uniform(-bound, bound, units)
        params.append({"W": weights.astype(dtype), "b": bias.astype(dtype)})
        width = units
    return params


@functools.lru_cache(maxsize=None)
def _forward_chunk(network):
    """Jitted inference ``(params, x (PREDICT_CHUNK, n_in)) -> A``: one program for any number of rows."""
    return jax.jit(network.forward)


def _forward(network, params, x: np.ndarray) -> np.ndarray:
    """``network.forward`` on all rows of ``x``, ``PREDICT_CHUNK`` at a time, as NumPy.

    The chunks are :func:`funcnet.row_chunks.map_row_chunks`'s (the last one
    padded by its one rule), all of exactly ``PREDICT_CHUNK`` rows, so every
    row goes through the same compiled program whatever the number of rows,
    and a row's prediction does not depend on the other rows.
    """
    forward = _forward_chunk(network)
    dtype = jax.tree.leaves(params)[0].dtype
    if not x.shape[0]:
        return np.zeros((0, network.n_out), dtype)
    outputs = map_row_chunks(lambda mask, chunk: forward(params, chunk), (x,), PREDICT_CHUNK, dtypes=[dtype],
                             host_loop=True)
    return np.asarray(concatenate_real_rows(outputs, x.shape[0]))


# ----------------------------------------------------------------------------- the estimators
class _MLPParameters(BaseEstimator):
    """The estimators' shared parameters (scikit-learn's names and defaults) and what they decide."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, grad="manual", dropout=0.0, dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.grad = grad
        self.dropout = dropout
        self.dtype = dtype

    # -------------------------------------------------------------- checks of the parameters
    def _hidden_sizes(self) -> tuple:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
                raise ValueError(f"`hidden_layer_sizes` must be positive integers, got {self.hidden_layer_sizes!r}")
        return tuple(int(size) for size in sizes)

    def _hidden_activations(self, num_hidden: int) -> tuple:
        names = self.activation
        per_layer = isinstance(names, (list, tuple))
        names = list(names) if per_layer else [names] * num_hidden
        if per_layer and len(names) != num_hidden:
            raise ValueError(f"`activation` lists {len(names)} activations but `hidden_layer_sizes` has "
                             f"{num_hidden} hidden layers; give one name for all or one per hidden layer")
        valid = sorted(set(SKLEARN_ACTIVATIONS) | (set(ACTIVATION_NAMES) - {"softmax"}))
        resolved = []
        for name in names:
            if not isinstance(name, str) or name not in valid:
                raise ValueError(f"`activation` must be one of {', '.join(valid)} (or a list, one per hidden "
                                 f"layer), got {name!r}")
            resolved.append(SKLEARN_ACTIVATIONS.get(name, name))
        return tuple(resolved)

    def _check_params(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"`solver` must be one of {', '.join(SOLVERS)}, got {self.solver!r} (funcnet has "
                             "no lbfgs)")
        if self.grad not in GRAD_MODES:
            raise ValueError(f"`grad` must be one of {', '.join(GRAD_MODES)}, got {self.grad!r}")
        checks = [("alpha", self.alpha, 0.0, False), ("learning_rate_init", self.learning_rate_init, 0.0, True),
                  ("tol", self.tol, 0.0, False), ("epsilon", self.epsilon, 0.0, True)]
        for name, value, low, strict in checks:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not math.isfinite(value) or value < low or (strict and value == low):
                raise ValueError(f"`{name}` must be a {'positive' if strict else 'non-negative'} finite number, "
                                 f"got {value!r}")
        for name, value in (("momentum", self.momentum), ("beta_1", self.beta_1), ("beta_2", self.beta_2),
                            ("dropout", self.dropout)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 <= value < 1:
                raise ValueError(f"`{name}` must be in [0, 1), got {value!r}")
        for name, value in (("max_iter", self.max_iter), ("n_iter_no_change", self.n_iter_no_change)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto") and (
                isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer))
                or self.batch_size < 1):
            raise ValueError(f"`batch_size` must be 'auto' or a positive integer, got {self.batch_size!r}")
        if isinstance(self.validation_fraction, bool) or not 0 < self.validation_fraction < 1:
            raise ValueError(f"`validation_fraction` must be in (0, 1), got {self.validation_fraction!r}")
        for name in ("shuffle", "warm_start", "early_stopping", "nesterovs_momentum"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"`{name}` must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.verbose, (bool, np.bool_, int, np.integer)) or self.verbose < 0:
            raise ValueError(f"`verbose` must be True, False or a non-negative integer, got {self.verbose!r}")

    def _param_dtype(self):
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        # (not `None in (...)`: NumPy compares None equal to float64, its default dtype)
        if dtype is None or dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"`dtype` must be 'float32' or 'float64', got {self.dtype!r}")
        if dtype == np.float64 and not jax.config.jax_enable_x64:
            raise ValueError("`dtype='float64'` needs JAX's 64-bit mode: call "
                             "jax.config.update('jax_enable_x64', True) first, or use dtype='float32'")
        return dtype

    def _batch_rows(self, num_rows: int) -> int:
        if self.batch_size == "auto":
            return min(200, num_rows)
        if self.batch_size > num_rows:
            warnings.warn(f"Got `batch_size`={self.batch_size} larger than the {num_rows} training rows; "
                          "it is clipped to the number of rows", UserWarning)
        return int(min(self.batch_size, num_rows))

    def _hyperparams(self) -> dict:
        """The solver's hyperparameters, as the optimizer state holds them (``optax.inject_hyperparams``)."""
        if self.solver == "adam":
            return {"learning_rate": self.learning_rate_init, "b1": self.beta_1, "b2": self.beta_2,
                    "eps": self.epsilon}
        return {"learning_rate": self.learning_rate_init, "momentum": self.momentum}


class _FuncnetMLP(_MLPParameters):
    """What the regressor and the classifier share beyond their parameters: the network, fitting, stopping."""

    # -------------------------------------------------------------- the network and its params
    def _network(self):
        return _network(self._layer_sizes, self._hidden, self._output, self._loss_name, float(self.dropout_))

    def _params(self):
        """``coefs_`` and ``intercepts_`` as funcnet's params (``{}`` for each dropout layer)."""
        params = []
        for index, (weights, bias) in enumerate(zip(self.coefs_, self.intercepts_)):
            params.append({"W": weights, "b": bias})
            if self.dropout_ and index < len(self.coefs_) - 1:
                params.append({})
        return params

    def _store_params(self, params) -> None:
        dense = [layer for layer in params if "W" in layer]
        self.coefs_ = [np.asarray(layer["W"]) for layer in dense]
        self.intercepts_ = [np.asarray(layer["b"]) for layer in dense]

    def _outputs(self, X) -> np.ndarray:
        """The network's outputs ``A`` for checked inputs ``X`` ``(n, n_features_in_)``."""
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        check_fits("X", X, self.coefs_[0].dtype, FITS_ADVICE)
        outputs = _forward(self._network(), self._params(), X.astype(self.coefs_[0].dtype, copy=False))
        return outputs.astype(X.dtype, copy=False)  # float64 inputs give float64 outputs, as scikit-learn

    # -------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, *, incremental=False, classes=None):
        """Train up to ``max_iter`` epochs (one with ``incremental``) through the engine's compiled epoch."""
        self._check_params()
        dtype = self._param_dtype()
        hidden_sizes = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        self._check_continuation(dtype, first_pass, incremental)
        X, y, targets, weights = self._training_arrays(X, y, sample_weight, dtype, first_pass, incremental, classes)
        rng = check_random_state(self.random_state)
        if first_pass:
            self._initialize(X.shape[1], hidden_sizes, dtype, rng)
        else:  # as scikit-learn, a warm start keeps the layer sizes but takes the current activation (and dropout)
            self._hidden = self._hidden_activations(len(self._layer_sizes) - 2)
            self.dropout_ = float(self.dropout)
        network = self._network()
        params = self._params()
        validation = None
        if self.early_stopping:
            X_train, targets_train, weights_train, *validation = self._validation_split(X, y, targets, weights, rng)
        else:
            X_train, targets_train, weights_train = X, targets, weights
        if first_pass:  # drawn after the initial weights and the validation split, as scikit-learn draws these
            self._shuffle_seed = int(rng.randint(np.iinfo(np.int32).max))
        epoch_fn = self._epoch_program(network, X_train.shape[0])
        opt_state = self._starting_optimizer_state(incremental, dtype)
        x_device, y_device = jax.device_put(X_train), jax.device_put(targets_train)  # copied once, not per epoch
        w_device = None if weights_train is None else jax.device_put(weights_train.astype(dtype))
        alpha = np.asarray(self.alpha, dtype)
        key = np.array([0, self._shuffle_seed], np.uint32)  # threefry key data

        best_params = params
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            params, opt_state, loss, _ = epoch_fn(params, opt_state, x_device, y_device, key,
                                                  np.uint32(self._epochs_seen % 2**32), sample_weight=w_device,
                                                  alpha=alpha)
            self._epochs_seen += 1
            self.n_iter_ += 1
            self.t_ += X_train.shape[0]
            if self._record_epoch(float(loss), network, params, validation):
                best_params = params
            if self._no_improvement_count > self.n_iter_no_change:
                if self.verbose:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    print(f"{what} did not improve more than tol={self.tol:f} for "
                          f"{self.n_iter_no_change} consecutive epochs. Stopping.")
                break
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning)
        self._store_params(best_params if self.early_stopping else params)
        self._optimizer_state = jax.tree.map(np.asarray, opt_state)
        return self

    def _check_continuation(self, dtype, first_pass: bool, incremental: bool) -> None:
        """What a warm start or ``partial_fit`` cannot continue: early stopping, or weights of another dtype."""
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True (it trains one epoch on the "
                             "rows it is given); use fit")
        if not first_pass and self.coefs_[0].dtype != dtype:
            raise ValueError(f"`dtype` is {np.dtype(dtype).name} but the fitted weights are "
                             f"{self.coefs_[0].dtype.name}; a warm start (warm_start=True or partial_fit) continues "
                             f"them in their dtype. Set dtype={self.coefs_[0].dtype.name!r}, or fit from scratch "
                             "with warm_start=False")

    def _training_arrays(self, X, y, sample_weight, dtype, first_pass, incremental, classes):
        """``(X in dtype, y, encoded targets, row weights or None)``, checked as scikit-learn checks them."""
        X, y = self._validate_data_and_targets(X, y, reset=first_pass, incremental=incremental, classes=classes)
        if sample_weight is not None:  # negative weights are refused, as funcnet.fit and class_weight refuse them
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        targets, weights = self._encode_targets(y, sample_weight)
        for name, values in (("X", X), ("sample_weight", weights)):  # (the regressor checks y)
            if values is not None:  # float64 values beyond float32's range would train on inf
                check_fits(name, values, dtype, FITS_ADVICE)
        return X.astype(dtype, copy=False), y, targets, weights

    def _epoch_program(self, network, num_rows: int):
        """The engine's epoch (:func:`funcnet.engine.compiled_epoch`) for these settings, compiled at the top level."""
        batch_size = self._batch_rows(num_rows)
        # (one batch of every row: the order would change only the sums' rounding, so no shuffle)
        options = EpochOptions(shuffle=bool(self.shuffle) and num_rows > batch_size,
                               loss_scale=float(self._loss_scale), loss_per="row", flat_params=True)
        return compiled_epoch(network, _optimizer(self.solver, bool(self.nesterovs_momentum)), self.grad,
                              batch_size, None, options, top_level=True)

    def _starting_optimizer_state(self, incremental: bool, dtype):
        """``partial_fit`` continues the optimizer's state; every other fit starts a fresh one."""
        if incremental and getattr(self, "_optimizer_state", None) is not None:
            return self._optimizer_state
        num_params = sum(weights.size + bias.size for weights, bias in zip(self.coefs_, self.intercepts_))
        return _initial_optimizer_state(self.solver, bool(self.nesterovs_momentum), num_params, dtype,
                                        self._hyperparams())

    def _record_epoch(self, loss: float, network, params, validation) -> bool:
        """Record an epoch's ``loss_`` (and validation score) and count epochs without improvement.

        Returns whether these params score best on the validation rows so far
        (``early_stopping``; always ``False`` without it).
        """
        self.loss_ = loss
        if not math.isfinite(loss):
            raise ValueError(f"the training loss became {loss} in epoch {self.n_iter_}; the solver "
                             "diverged. Scale the inputs (e.g. StandardScaler) or lower learning_rate_init")
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
        if not self.early_stopping:
            self._no_improvement_count = self._no_improvement_count + 1 if loss > self.best_loss_ - self.tol else 0
            self.best_loss_ = min(self.best_loss_, loss)
            return False
        score = self._validation_score(network, params, *validation)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        self._no_improvement_count = (self._no_improvement_count + 1
                                      if score < self.best_validation_score_ + self.tol else 0)
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            return True
        return False

    def _initialize(self, num_features, hidden_sizes, dtype, rng) -> None:
        self._layer_sizes = (num_features, *hidden_sizes, self.n_outputs_)
        self._hidden = self._hidden_activations(len(hidden_sizes))
        self.dropout_ = float(self.dropout)
        self.n_layers_ = len(self._layer_sizes)
        self.out_activation_ = {"sigmoid": "logistic"}.get(self._output, self._output)
        self._store_params(_initial_params(self._network(), rng, dtype))
        self._epochs_seen = 0
        self._optimizer_state = None
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _validation_split(self, X, y, targets, weights, rng):
        """scikit-learn's split: the same rows for the same ``random_state``.

        As scikit-learn, stratified only when the network has one output (two
        classes); ``targets`` is then the ``(n, 1)`` 0/1 column it stratifies on.
        """
        stratify = targets if isinstance(self, ClassifierMixin) and self.n_outputs_ == 1 else None
        arrays = [X, targets, y] + ([] if weights is None else [weights])
        parts = train_test_split(*arrays, random_state=rng, test_size=self.validation_fraction, stratify=stratify)
        X_train, X_val, t_train, _t_val, _y_train, y_val = parts[:6]
        w_train, w_val = (parts[6], parts[7]) if weights is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                             "your dataset.")
        return X_train, t_train, w_train, X_val, y_val, w_val

    def _validation_score(self, network, params, X_val, y_val, weights_val) -> float:
        outputs = _forward(network, params, X_val)
        if not np.all(np.isfinite(outputs)):
            return float("nan")
        return float(self._score_outputs(outputs, y_val, weights_val))


class MLPRegressor(RegressorMixin, _FuncnetMLP):
    """A multi-layer perceptron regressor with scikit-learn's API, trained by funcnet.

    Parameters are scikit-learn's ``MLPRegressor``'s (see the module
    docstring for the objective and stopping rule), plus:

    * ``loss``: ``"mse"`` (scikit-learn's ``½ mean (y − ŷ)²``, the default),
      ``"mae"`` or ``"huber"`` (threshold 1);
    * ``grad``: ``"manual"`` (hand-written backprop) or ``"autodiff"`` (``jax.grad``);
    * ``dropout``: the dropout rate after every hidden layer;
    * ``dtype``: ``"float32"`` (default) or ``"float64"`` (needs JAX's x64 mode);
    * ``activation`` also takes funcnet's names (gelu, elu, silu, ...) and a
      list with one per hidden layer.

    Fitted attributes: ``coefs_`` ``[(n_in, n_out), ...]``, ``intercepts_``,
    ``n_iter_``, ``loss_curve_``, ``loss_``, ``best_loss_``,
    ``validation_scores_``, ``best_validation_score_``, ``n_features_in_``,
    ``feature_names_in_`` (for DataFrames), ``n_outputs_``, ``t_``,
    ``n_layers_``, ``out_activation_``.  ``y`` may be ``(n,)`` or ``(n, k)``.

    Example:
      >>> from funcnet.sklearn import MLPRegressor
      >>> model = MLPRegressor(hidden_layer_sizes=(32,), max_iter=50, random_state=0).fit(X, y)
      >>> model.predict(X[:3])
    """

    def __init__(self, loss="mse", hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, grad="manual", dropout=0.0, dtype="float32"):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
                         batch_size=batch_size, learning_rate_init=learning_rate_init, max_iter=max_iter,
                         shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
                         warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, grad=grad,
                         dropout=dropout, dtype=dtype)
        self.loss = loss

    def fit(self, X, y, sample_weight=None):
        """Train on ``X (n, n_features)``, ``y (n,)`` or ``(n, k)``; ``sample_weight (n,)`` optional.  Returns self."""
        return self._fit(X, y, sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X (n, n_features)``, ``y (n,)`` or ``(n, k)`` (``sample_weight (n,)`` optional).

        Continues from the current weights and optimizer state; the first call
        initialises them.  Each call shuffles with the next epoch's
        permutation.  Returns self.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions ``(n,)``, or ``(n, k)`` for a model fitted on ``k > 1`` outputs (NumPy)."""
        outputs = self._outputs(X)
        return outputs[:, 0] if self.n_outputs_ == 1 else outputs

    def _validate_data_and_targets(self, X, y, *, reset, incremental, classes):
        if self.loss not in REGRESSION_LOSSES:
            raise ValueError(f"`loss` must be one of {', '.join(REGRESSION_LOSSES)}, got {self.loss!r}")
        X, y = validate_data(self, X, y, reset=reset, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32))
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        if reset:
            self.n_outputs_ = targets.shape[1]
        elif targets.shape[1] != self.n_outputs_:
            raise ValueError(f"`y` has {targets.shape[1]} outputs but the model was fitted with {self.n_outputs_}")
        # the current `loss`, on a warm start too (as the current activation); loss_curve_ goes on in its values
        self._output, self._loss_name = "identity", self.loss
        self._loss_scale = 0.5 if self.loss == "mse" else 1.0
        return X, y

    def _encode_targets(self, y, sample_weight):
        check_fits("y", y, self._param_dtype(), FITS_ADVICE)
        targets = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(self._param_dtype())
        return targets, sample_weight

    def _score_outputs(self, outputs, y, sample_weight):
        predictions = outputs[:, 0] if self.n_outputs_ == 1 else outputs
        return r2_score(y, predictions, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class MLPClassifier(ClassifierMixin, _FuncnetMLP):
    """A multi-layer perceptron classifier with scikit-learn's API, trained by funcnet.

    Parameters are scikit-learn's ``MLPClassifier``'s (see the module
    docstring), plus ``grad``, ``dropout``, ``dtype`` and:

    * ``class_weight``: ``None``, ``{label: weight}`` (labels as in ``y``)
      or ``"balanced"`` (``n / (k · count)``); it multiplies ``sample_weight``.

    Labels may be of any type (ints, strings, ...).  Two classes train one
    sigmoid output with log-loss, more train a softmax with cross-entropy,
    and a multilabel indicator matrix ``(n, k)`` trains ``k`` sigmoid outputs
    (as scikit-learn).  Fitted attributes are the regressor's plus
    ``classes_``.  ``predict`` returns labels from ``classes_``;
    ``predict_proba`` ``(n, n_classes)`` and ``predict_log_proba``.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, grad="manual", dropout=0.0, class_weight=None, dtype="float32"):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
                         batch_size=batch_size, learning_rate_init=learning_rate_init, max_iter=max_iter,
                         shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
                         warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, grad=grad,
                         dropout=dropout, dtype=dtype)
        self.class_weight = class_weight

    def fit(self, X, y, sample_weight=None):
        """Train on ``X (n, n_features)`` and labels ``y (n,)`` (or a multilabel ``(n, k)`` 0/1 matrix)."""
        return self._fit(X, y, sample_weight)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X (n, n_features)`` and labels ``y (n,)`` (or a multilabel ``(n, k)`` 0/1 matrix).

        The first call needs ``classes``, every label that will ever appear
        (not for a multilabel ``y``); every later ``y`` must use only those
        labels.  ``sample_weight (n,)`` is optional.  Returns self.
        """
        first_call = not hasattr(self, "classes_")
        if first_call and classes is None and type_of_target(y) != "multilabel-indicator":
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if not first_call and classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={classes!r}` is not the same as on the first call to partial_fit "
                             f"({self.classes_!r})")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes if first_call else None)

    def predict(self, X):
        """Labels from ``classes_``: ``(n,)``, or a ``(n, k)`` 0/1 matrix for a multilabel model."""
        outputs = self._outputs(X)
        return self._labels(outputs)

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)`` in the order of ``classes_`` (NumPy).

        Two classes: ``[1 − σ(z), σ(z)]`` from the one logistic output
        ``σ(z) = 1 / (1 + e^−z)``; more: the softmax ``e^{z_j} / Σ_i e^{z_i}``;
        multilabel: ``σ(z_j)`` per label, each on its own (rows need not sum to 1).
        """
        outputs = self._outputs(X)
        if self._kind == "binary":
            return np.hstack([1 - outputs, outputs])
        return outputs

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``, ``(n, n_classes)``; ``-inf`` where a probability is 0."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def _labels(self, outputs):
        if self._kind == "multilabel":
            return (outputs > 0.5).astype(int)
        if self._kind == "binary":
            return self.classes_[(outputs[:, 0] > 0.5).astype(int)]
        return self.classes_[np.argmax(outputs, axis=1)]

    def _validate_data_and_targets(self, X, y, *, reset, incremental, classes):
        X, y = validate_data(self, X, y, reset=reset, multi_output=True, dtype=(np.float64, np.float32))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)  # scikit-learn's DataConversionWarning
        check_classification_targets(y)
        target_type = type_of_target(y)
        if target_type == "multiclass-multioutput":
            raise ValueError("MLPClassifier supports one label per row or a multilabel 0/1 indicator matrix, "
                             "not multiclass-multioutput targets; fit one classifier per output")
        if reset:
            if target_type == "multilabel-indicator":
                self.classes_ = np.arange(y.shape[1])
                self._kind = "multilabel"
            else:
                self.classes_ = unique_labels(y) if classes is None else np.unique(classes)
                if len(self.classes_) < 2:
                    raise ValueError(f"MLPClassifier needs samples of at least 2 classes in the data; got 1 "
                                     f"class: {self.classes_.tolist()}")
                self._kind = "binary" if len(self.classes_) == 2 else "multiclass"
            self.n_outputs_ = 1 if self._kind == "binary" else len(self.classes_)
            self._output, self._loss_name = ("softmax", "cross_entropy") if self._kind == "multiclass" \
                else ("sigmoid", "logloss")
            self._loss_scale = float(self.n_outputs_) if self._kind == "multilabel" else 1.0
        elif (target_type == "multilabel-indicator") != (self._kind == "multilabel"):
            raise ValueError(f"`y` is {target_type} but the model was fitted on {self._kind} targets")
        if self._kind != "multilabel":  # (also on partial_fit's first call: `classes=` may miss labels of y)
            unknown = np.setdiff1d(unique_labels(y), self.classes_)
            if len(unknown):
                what = "warm_start can only be used where `y` has the same classes as in the previous call " \
                       "to fit" if self.warm_start and not incremental else "`y` has classes not in `self.classes_`"
                raise ValueError(f"{what}. `self.classes_` has {self.classes_}; `y` has {unknown}.")
        return X, y

    def _encode_targets(self, y, sample_weight):
        dtype = self._param_dtype()
        if self._kind == "multilabel":
            indices, targets = None, np.asarray(y, dtype)
        else:
            indices = np.searchsorted(self.classes_, y)
            targets = indices.reshape(-1, 1).astype(dtype) if self._kind == "binary" else indices.astype(np.int32)
        weights = sample_weight
        if self.class_weight is not None:
            if self._kind == "multilabel":
                raise ValueError("`class_weight` needs one label per row; this is a multilabel fit (use "
                                 "sample_weight)")
            class_weight = self.class_weight
            if isinstance(class_weight, dict):  # labels as in y -> class indices
                unknown = [label for label in class_weight if label not in set(self.classes_.tolist())]
                if unknown:
                    raise ValueError(f"`class_weight` names labels {unknown} that are not classes "
                                     f"({self.classes_.tolist()})")
                class_weight = {int(np.searchsorted(self.classes_, label)): value
                                for label, value in class_weight.items()}
                class_weight = {index: value for index, value in class_weight.items() if index in set(indices.tolist())}
            network = self._network() if hasattr(self, "_layer_sizes") else _network(
                (1, self.n_outputs_), (), self._output, self._loss_name, 0.0)
            weights = row_weights(network, targets, sample_weight, class_weight)
        return targets, weights

    def _score_outputs(self, outputs, y, sample_weight):
        return accuracy_score(y, self._labels(outputs), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
