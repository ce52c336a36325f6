"""Same network, same data, same key: only the optax optimizer changes.

Gradient descent is a separate stage from backpropagation (the second
article's advice), so swapping SGD for momentum, Adam or RMSProp is one
argument.  Trains the regression workload (25,000 rows here, to stay quick)
for 10 epochs with each and prints the final losses side by side.

Run: python examples/swap_optimizers.py
"""

import jax
import optax

import funcnet as fn

OPTIMIZERS = {
    "sgd lr 1e-3": optax.sgd(1e-3),
    "momentum lr 1e-4, 0.9": optax.sgd(1e-4, momentum=0.9),
    "adam lr 1e-2": optax.adam(1e-2),
    "rmsprop lr 1e-3": optax.rmsprop(1e-3),
}


def main():
    data_key, split_key = jax.random.split(jax.random.key(42))
    x, y = fn.make_regression_data(data_key, 25_000)
    x_train, x_test, y_train, y_test = fn.train_test_split(split_key, x, y, 0.2)
    scaler = fn.fit_standardizer(x_train)
    x_train, x_test = scaler.apply(x_train), scaler.apply(x_test)
    model = fn.mlp([5, 10, 10, 1], hidden="relu", loss="mse")
    params = model.init(jax.random.key(0))
    print(f"{'optimizer':<24} {'train MSE':>10} {'val MSE':>10} {'test MSE':>10}")
    for name, optimizer in OPTIMIZERS.items():
        fitted, history = fn.fit(model, params, optimizer, x_train, y_train, epochs=10, batch_size=64,
                                 validation_split=0.2, key=jax.random.key(1), grad="manual")
        test = fn.evaluate(model, fitted, x_test, y_test)
        print(f"{name:<24} {history['train_loss'][-1]:>10.2f} {history['val_loss'][-1]:>10.2f} {test:>10.2f}")


if __name__ == "__main__":
    main()
