"""How much of a digit does the first time step carry? A plain classifier on step-1 pixels alone.

    python -m bench.repro.step1_bound --bins 4 20

Any sequence model's accuracy after step 1 is bounded by what the pixels firing at step 1 tell, so a
logistic regression trained on those pixels alone (same split as `bench.repro.run digits`) gives a
practical ceiling for "accuracy after step 1", and its share of test digits predicted with probability ≥ θ
says how many digits *could* be decided at step 1 at that threshold.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def step1_bound(bins: int, theta: float = 0.95, regularisation: float = 1.0) -> dict:
    """Logistic regression on the 0/1 vector of pixels firing at step 1 → accuracy and confident share."""
    from sklearn.linear_model import LogisticRegression

    from bench.repro import tasks
    from bench.repro.run import EVAL_SEED

    train, test = tasks.sklearn_digits(bins, np.random.default_rng(EVAL_SEED))
    x_train, x_test = (train.x == 0).astype(np.float64), (test.x == 0).astype(np.float64)
    model = LogisticRegression(C=regularisation, max_iter=5000).fit(x_train, train.y)
    probs = model.predict_proba(x_test)
    correct = probs.argmax(1) == test.y
    confident = probs.max(1) >= theta
    return {
        "bins": bins,
        "pixels_at_step1": float(x_test.sum(1).mean()),
        "pixels_firing": float((test.x >= 0).sum(1).mean()),
        "accuracy": float(correct.mean()),
        "confident_share": float(confident.mean()),
        "confident_accuracy": float(correct[confident].mean()) if confident.any() else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.repro.step1_bound", description=__doc__.splitlines()[0])
    parser.add_argument("--bins", nargs="+", type=int, default=[4, 20])
    parser.add_argument("--theta", type=float, default=0.95)
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    args = parser.parse_args(argv)
    for bins in args.bins:
        r = step1_bound(bins, args.theta, args.C)
        print(f"{bins} bins: {r['pixels_at_step1']:.1f} of {r['pixels_firing']:.1f} firing pixels at step 1; "
              f"step-1-only accuracy {r['accuracy']:.1%}; p ≥ {args.theta}: {r['confident_share']:.1%} of digits "
              f"at {r['confident_accuracy']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
