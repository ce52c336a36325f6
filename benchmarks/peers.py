"""One training run of one implementation, in its own process; prints one JSON line.

Every peer trains the same network on the same float32 data (the second
article's workload, generated with NumPy from a fixed seed), with Adam
(lr 1e-3), batch 64, every training row once per epoch, reshuffled each epoch.
It reports the wall-clock and CPU time of every epoch (the first includes
compilation), the time from process start, and the test MSE.

The funcnet peers can also train the same widths with dropout or layer
normalisation (``--model dropout|layer_norm``, see ``funcnet_model``), and
report the dense layers' layout (``FUNCNET_DENSE_LAYOUT``, default: columns
on CPU).

Usage (normally through bench_training.py, bench_layers.py, bench_layout.py):
    python benchmarks/peers.py PEER --sizes 5,10,10,1 --epochs 20 [--rows 100000] [--model mlp]
"""

import argparse
import json
import sys
import time

PROCESS_START = time.perf_counter()

import numpy as np  # noqa: E402

LEARNING_RATE, BATCH_SIZE = 1e-3, 64
DROPOUT_RATE = 0.2
MODELS = ("mlp", "dropout", "layer_norm")


def article_data(rows, seed=42):
    """The article's generate_data in NumPy, split 80/20 and standardised on the training rows."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, rows))
    d = rng.integers(0, 4, size=rows)
    e = rng.binomial(1, 0.5, size=rows)
    target = 50 + 0.8 * a + 0.4 * b - 0.2 * c + 10 * d + 20 * e + rng.normal(0, 10, size=rows)
    x = np.stack([a, b, c, d, e], axis=1)
    order = rng.permutation(rows)
    cut = rows - int(np.ceil(0.2 * rows))
    train, test = order[:cut], order[cut:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = ((x - mean) / std).astype(np.float32)
    y = target.reshape(-1, 1).astype(np.float32)
    return x[train], y[train], x[test], y[test]


class Clock:
    """Wall-clock and CPU-time stamps; ``durations()`` gives both per interval."""

    def __init__(self):
        self.stamps = [(time.perf_counter(), time.process_time())]

    def stamp(self, *_):
        self.stamps.append((time.perf_counter(), time.process_time()))

    def durations(self):
        pairs = list(zip(self.stamps, self.stamps[1:]))
        return [b[0] - a[0] for a, b in pairs], [b[1] - a[1] for a, b in pairs]


def timed_epochs(run_epoch, epochs):
    """Call ``run_epoch(epoch)`` ``epochs`` times (each must block until done): ``(wall, cpu)`` per epoch."""
    clock = Clock()
    for epoch in range(epochs):
        run_epoch(epoch)
        clock.stamp()
    return clock.durations()


# ---------------------------------------------------------------- funcnet
def funcnet_model(kind, sizes):
    """The funcnet network of ``--model``: ``sizes`` with ReLU hidden layers, MSE.

    * ``mlp``: ``fn.mlp(sizes)``.
    * ``dropout``: ``fn.mlp(sizes, dropout=0.2)``: dropout after every hidden layer.
    * ``layer_norm``: ``fn.sequential`` of ``dense(w, "relu"), layer_norm()`` for
      every hidden width ``w``, then ``dense(sizes[-1])``.
    """
    import funcnet as fn

    if kind == "mlp":
        return fn.mlp(sizes, hidden="relu", output="identity", loss="mse")
    if kind == "dropout":
        return fn.mlp(sizes, hidden="relu", output="identity", loss="mse", dropout=DROPOUT_RATE)
    if kind == "layer_norm":
        hidden = [layer for width in sizes[1:-1] for layer in (fn.dense(width, "relu"), fn.layer_norm())]
        return fn.sequential(sizes[0], hidden + [fn.dense(sizes[-1])], loss="mse")
    raise ValueError(f"unknown model {kind!r}; expected one of {', '.join(MODELS)}")


def run_funcnet(grad, sizes, epochs, data, kind="mlp"):
    import jax
    import optax

    import funcnet as fn

    x, y, x_test, y_test = data
    model = funcnet_model(kind, sizes)
    params = model.init(jax.random.key(0))
    clock = Clock()
    params, _ = fn.fit(model, params, optax.adam(LEARNING_RATE), x, y, epochs=epochs,
                       batch_size=BATCH_SIZE, key=jax.random.key(1), grad=grad, callback=clock.stamp)
    return clock.durations(), fn.evaluate(model, params, x_test, y_test)


def dense_layout():
    """``columns`` or ``rows``: how funcnet's dense layers compute in this process (``None`` before layers)."""
    try:
        from funcnet.layers import materialise_transposes
    except ImportError:  # version 1 (benchmarked by bench_versions.py) had no layers module
        return None
    return "columns" if materialise_transposes() else "rows"


# ---------------------------------------------------------------- NumPy
def run_numpy(sizes, epochs, data):
    """The article's Neural class done right: every batch, exact mean gradients, Adam."""
    x, y, x_test, y_test = data
    rng = np.random.default_rng(0)
    layers = [[(rng.normal(size=(n_in, n_out)) * np.sqrt(2 / n_in)).astype(np.float32),
               np.zeros(n_out, np.float32)] for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    moments = [[np.zeros_like(p) for p in layer] for layer in layers]
    velocities = [[np.zeros_like(p) for p in layer] for layer in layers]
    step = [0]

    def forward(batch):
        hidden = [batch]
        for index, (w, b) in enumerate(layers):
            batch = batch @ w + b
            if index < len(layers) - 1:
                batch = np.maximum(batch, 0)
            hidden.append(batch)
        return hidden

    def train_step(xb, yb):
        hidden = forward(xb)
        grad = 2 * (hidden[-1] - yb) / len(xb)
        step[0] += 1
        for index in reversed(range(len(layers))):
            if index != len(layers) - 1:
                grad = grad * (hidden[index + 1] > 0)
            grads = (hidden[index].T @ grad, grad.sum(axis=0))
            if index:
                grad = grad @ layers[index][0].T
            for leaf in range(2):
                m, v = moments[index][leaf], velocities[index][leaf]
                m *= 0.9
                m += 0.1 * grads[leaf]
                v *= 0.999
                v += 0.001 * grads[leaf] ** 2
                m_hat = m / (1 - 0.9 ** step[0])
                v_hat = v / (1 - 0.999 ** step[0])
                layers[index][leaf] -= (LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)

    def run_epoch(epoch):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH_SIZE):
            rows = order[start:start + BATCH_SIZE]
            train_step(x[rows], y[rows])

    times = timed_epochs(run_epoch, epochs)
    return times, float(np.mean((forward(x_test)[-1] - y_test) ** 2))


# ---------------------------------------------------------------- PyTorch
def run_torch(sizes, epochs, data):
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y, x_test, y_test = (torch.from_numpy(a) for a in data)
    modules = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        modules.append(torch.nn.Linear(n_in, n_out))
        if index < len(sizes) - 2:
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.MSELoss()

    def run_epoch(epoch):
        order = torch.randperm(len(x))
        for start in range(0, len(x), BATCH_SIZE):
            rows = order[start:start + BATCH_SIZE]
            optimizer.zero_grad()
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()
            optimizer.step()

    times = timed_epochs(run_epoch, epochs)
    with torch.no_grad():
        return times, float(loss_fn(model(x_test), y_test))


# ---------------------------------------------------------------- plain JAX
def _jax_setup(sizes):
    import jax
    import jax.numpy as jnp
    import optax

    def init(key):
        params = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            key, sub = jax.random.split(key)
            params.append((jax.random.normal(sub, (n_in, n_out)) * jnp.sqrt(2 / n_in), jnp.zeros(n_out)))
        return params

    def predict(params, x):
        for w, b in params[:-1]:
            x = jax.nn.relu(x @ w + b)
        w, b = params[-1]
        return x @ w + b

    def loss(params, x, y):
        return jnp.mean((predict(params, x) - y) ** 2)

    optimizer = optax.adam(LEARNING_RATE)

    def update(params, state, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    params = init(jax.random.key(0))
    return jax, jnp, params, optimizer.init(params), update, loss


def run_jax_step(sizes, epochs, data):
    """The jax/stax MNIST style: a jitted update called from a Python loop over batches."""
    jax, jnp, params, state, update, loss = _jax_setup(sizes)
    update = jax.jit(update)
    x, y, x_test, y_test = (jnp.asarray(a) for a in data)
    key = jax.random.key(1)
    carry = [params, state]

    def run_epoch(epoch):
        order = jax.random.permutation(jax.random.fold_in(key, epoch), len(x))
        xs, ys = x[order], y[order]
        for start in range(0, len(x), BATCH_SIZE):
            carry[0], carry[1], _ = update(carry[0], carry[1], xs[start:start + BATCH_SIZE],
                                           ys[start:start + BATCH_SIZE])
        jax.block_until_ready(carry[0])

    times = timed_epochs(run_epoch, epochs)
    return times, float(loss(carry[0], x_test, y_test))


def run_jax_scan(sizes, epochs, data):
    """Whole epoch in one jitted lax.scan over batches (jax.random.permutation shuffle)."""
    jax, jnp, params, state, update, loss = _jax_setup(sizes)
    x, y, x_test, y_test = (jnp.asarray(a) for a in data)
    full = len(x) // BATCH_SIZE * BATCH_SIZE

    @jax.jit
    def epoch_fn(params, state, key):
        order = jax.random.permutation(key, len(x))
        xs = x[order][:full].reshape(-1, BATCH_SIZE, x.shape[1])
        ys = y[order][:full].reshape(-1, BATCH_SIZE, 1)
        (params, state), _ = jax.lax.scan(lambda c, b: (update(*c, *b)[:2], None), (params, state), (xs, ys))
        if full < len(x):
            params, state, _ = update(params, state, x[order][full:], y[order][full:])
        return params, state

    key = jax.random.key(1)
    carry = [params, state]

    def run_epoch(epoch):
        carry[0], carry[1] = jax.block_until_ready(epoch_fn(carry[0], carry[1], jax.random.fold_in(key, epoch)))

    times = timed_epochs(run_epoch, epochs)
    return times, float(loss(carry[0], x_test, y_test))


# ---------------------------------------------------------------- scikit-learn
def run_sklearn(sizes, epochs, data):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    x, y, x_test, y_test = data
    model = MLPRegressor(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu", solver="adam",
                         alpha=0.0, batch_size=BATCH_SIZE, learning_rate_init=LEARNING_RATE, max_iter=1,
                         shuffle=True, random_state=0, warm_start=True, tol=0.0, n_iter_no_change=10**9)

    def run_epoch(epoch):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y[:, 0])

    times = timed_epochs(run_epoch, epochs)
    return times, float(np.mean((model.predict(x_test) - y_test[:, 0]) ** 2))


# ---------------------------------------------------------------- Flax NNX
def run_flax(sizes, epochs, data):
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.layers = [nnx.Linear(i, o, rngs=rngs) for i, o in zip(sizes[:-1], sizes[1:])]

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = jax.nn.relu(layer(x))
            return self.layers[-1](x)

    model = MLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, xb, yb):
        grads = nnx.grad(lambda m: jnp.mean((m(xb) - yb) ** 2))(model)
        optimizer.update(model, grads)

    x, y, x_test, y_test = (jnp.asarray(a) for a in data)
    rng = np.random.default_rng(1)

    def run_epoch(epoch):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH_SIZE):
            rows = order[start:start + BATCH_SIZE]
            train_step(model, optimizer, x[rows], y[rows])
        jax.block_until_ready(jax.tree.leaves(nnx.state(model)))

    times = timed_epochs(run_epoch, epochs)
    return times, float(jnp.mean((model(x_test) - y_test) ** 2))


PEERS = {
    "funcnet-autodiff": lambda *a, **k: run_funcnet("autodiff", *a, **k),
    "funcnet-manual": lambda *a, **k: run_funcnet("manual", *a, **k),
    "numpy": run_numpy,
    "torch": run_torch,
    "jax-step": run_jax_step,
    "jax-scan": run_jax_scan,
    "sklearn": run_sklearn,
    "flax-nnx": run_flax,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--sizes", default="5,10,10,1")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", choices=MODELS, default="mlp",
                        help="funcnet peers only: plain MLP, with dropout, or with layer norm")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    is_funcnet = args.peer.startswith("funcnet-")
    if args.model != "mlp" and not is_funcnet:
        parser.error(f"--model {args.model} is only for the funcnet peers, not {args.peer}")
    data = article_data(args.rows)
    start = time.perf_counter()
    try:
        options = {"kind": args.model} if is_funcnet else {}
        (wall, cpu), test_mse = PEERS[args.peer](sizes, args.epochs, data, **options)
    except ImportError as error:
        print(json.dumps({"peer": args.peer, "skipped": f"not installed: {error.name}"}))
        return
    report = {
        "peer": args.peer, "model": args.model, "epoch_seconds": wall, "epoch_cpu_seconds": cpu,
        "test_mse": test_mse, "train_seconds": time.perf_counter() - start,
        "process_seconds": time.perf_counter() - PROCESS_START, "train_rows": len(data[0]),
    }
    if is_funcnet:
        report["dense_layout"] = dense_layout()
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
