"""funcnet as a scikit-learn estimator: a Pipeline, cross-validation and a grid search on breast cancer.

``funcnet.sklearn.MLPClassifier`` takes scikit-learn's MLP parameters plus
funcnet's own (``grad``, ``dropout``, per-layer activations, ``class_weight``).
The grid below varies the learning rate and alpha: every candidate
has the same architecture, so all of them share one compiled epoch (the
hyperparameters are data in the optimizer state, not constants in the program).

Run: python examples/sklearn_pipeline.py      (a few seconds)
"""

import time
import warnings

from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from funcnet.sklearn import MLPClassifier


def main():
    features, labels = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(features, labels, random_state=0, stratify=labels)
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(32, 16), activation=["gelu", "tanh"], dropout=0.1, class_weight="balanced",
        max_iter=30, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 30 epochs is a short, deliberate budget
        scores = cross_val_score(pipeline, x_train, y_train, cv=3)
        print(f"3-fold accuracy: {' '.join(f'{score:.3f}' for score in scores)}")

        grid = {"mlpclassifier__learning_rate_init": [1e-3, 1e-2], "mlpclassifier__alpha": [1e-4, 1e-1]}
        start = time.perf_counter()
        search = GridSearchCV(pipeline, grid, cv=3).fit(x_train, y_train)
    print(f"grid search: {len(search.cv_results_['params'])} candidates x 3 folds in "
          f"{time.perf_counter() - start:.1f} s; best {search.best_params_}")
    test_accuracy = search.score(x_test, y_test)
    print(f"test accuracy of the best pipeline: {test_accuracy:.3f}")
    return {"cross_val_scores": scores, "test_accuracy": test_accuracy}


if __name__ == "__main__":
    main()
