"""How high can any model score at D? Models fitted on D's own outcomes, beside the peers of holdout.py.

``benchmarks/holdout.py`` asks churnlens, trained on the history before a scoring date D, to
rank the customers active at D at least 0.005 ROC AUC above the best peer. This script measures
the room there is: it builds churnlens's snapshot at D and fits models on **the outcomes at D
themselves** (customer-level cross-validation, 5 folds repeated 3 times, out-of-fold
predictions). No deployable model can know those outcomes, so these figures are an upper bound
for a model that only sees the snapshot's features: if even they do not clear the best peer by
0.005, the bar asks for information the features do not hold.

Oracle models (all cross-validated on the outcomes at D):

- ``rfm_logistic``: a logistic regression on the peers' recency, frequency, monetary value and
  tenure (log-scaled, standardised);
- ``logistic_all``: the same on every numeric feature of churnlens's snapshot at D;
- ``logistic_all_bgnbd``: also the BG/NBD P(no purchase in the horizon) as log-odds (the
  ``bgnbd`` peer's own score);
- ``lgbm_all``: a small LightGBM (200 trees, learning rate 0.03, 15 leaves) on the snapshot.

Beside them: the peers as holdout.py fits them (on the history before D only, not oracles),
and the churn rate of the latest cutoff whose 90-day label had matured by D against the rate at
D, the base-rate shift a calibrator fitted on the past cannot know.

Run:  python benchmarks/holdout_ceiling.py [--cases june september short cdnow]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import holdout  # noqa: E402  (the sibling benchmark: same cases, loaders, peers and metrics)

FOLDS, REPEATS = 5, 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=holdout.default_data(), help="UCI Online Retail file.")
    parser.add_argument("--cases", nargs="*", choices=sorted(holdout.CASES),
                        default=["june", "september", "short", "cdnow"])
    parser.add_argument("--seed", type=int, default=42, help="Seed of the folds, LightGBM and the peers.")
    return parser.parse_args(argv)


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def out_of_fold(model_factory, X: np.ndarray, y: np.ndarray, seed: int) -> list[np.ndarray]:
    """Out-of-fold probabilities of ``REPEATS`` shuffled stratified ``FOLDS``-fold splits."""
    from sklearn.model_selection import StratifiedKFold

    predictions = []
    for repeat in range(REPEATS):
        p = np.empty(len(y))
        for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=seed + repeat).split(X, y):
            p[test] = model_factory().fit(X[train], y[train]).predict_proba(X[test])[:, 1]
        predictions.append(p)
    return predictions


def oracle_scores(snapshot: pd.DataFrame, rfm: pd.DataFrame, bgnbd: pd.Series, y: np.ndarray,
                  seed: int) -> dict[str, float]:
    """Mean ROC AUC over the repeats of each oracle model."""
    import lightgbm as lgb
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def logistic():
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=2000))

    def boosted():
        return lgb.LGBMClassifier(n_estimators=200, learning_rate=0.03, num_leaves=15, min_child_samples=40,
                                  subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=seed,
                                  n_jobs=2, verbose=-1)

    numeric = snapshot.select_dtypes("number").to_numpy(dtype=float)
    p = np.clip(bgnbd.to_numpy(dtype=float), 1e-6, 1 - 1e-6)
    matrices = {
        "rfm_logistic": (logistic, _signed_log(rfm[holdout.RFM].to_numpy(dtype=float))),
        "logistic_all": (logistic, _signed_log(numeric)),
        "logistic_all_bgnbd": (logistic, np.column_stack([_signed_log(numeric), np.log(p / (1 - p))])),
        "lgbm_all": (boosted, numeric),
    }
    return {name: float(np.mean([roc_auc_score(y, q) for q in out_of_fold(factory, X, y, seed)]))
            for name, (factory, X) in matrices.items()}


def matured_rate(history: pd.DataFrame, scoring_date: pd.Timestamp) -> tuple[pd.Timestamp, float]:
    """Churn rate of the active customers at the latest cutoff whose label window ends by D."""
    cutoff = scoring_date - pd.Timedelta(days=holdout.HORIZON)
    active = holdout.rfm_at(history, cutoff).index
    return cutoff, float(holdout.churned(history, cutoff, active).mean())


def run_case(case: holdout.Case, purchases: pd.DataFrame, seed: int) -> dict:
    from churnlens.config import FeatureConfig
    from churnlens.data.validate import validate_tables
    from churnlens.features import build_snapshot

    history = holdout.case_history(case, purchases)
    at_d = holdout.rfm_at(history, case.scoring_date)
    y = holdout.churned(purchases, case.scoring_date, at_d.index)
    tables, _ = validate_tables({"purchases": history})
    snapshot = build_snapshot(tables, case.scoring_date, FeatureConfig()).reindex(at_d.index.astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peers = holdout.fit_peers(history, case.scoring_date, at_d, seed)
        oracles = oracle_scores(snapshot, at_d, peers["bgnbd"], y, seed)
    from sklearn.metrics import roc_auc_score

    peer_auc = {name: float(roc_auc_score(y, s.reindex(at_d.index))) for name, s in peers.items()}
    cutoff, rate = matured_rate(history, case.scoring_date)
    return {"case": case.name, "customers": len(y), "features": snapshot.select_dtypes("number").shape[1],
            "peers": peer_auc, "oracles": oracles, "matured_cutoff": cutoff, "matured_rate": rate,
            "rate_at_d": float(y.mean())}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = [holdout.CASES[c] for c in args.cases]
    loaders = {"online_retail": lambda: holdout.load_purchases(args.data), "cdnow": holdout.load_cdnow}
    data = {name: loaders[name]() for name in dict.fromkeys(c.dataset for c in cases)}
    results = [run_case(case, data[case.dataset], args.seed) for case in cases]
    names = list(results[0]["oracles"])
    print(f"Oracle ROC AUC: fitted on the outcomes at D ({REPEATS}x{FOLDS}-fold CV), against the best peer "
          "fitted on the past\n")
    print("| case | customers | best peer (past only) | " + " | ".join(names) + " | best oracle − best peer |")
    print("|---|---:|---|" + "---:|" * len(names) + "---:|")
    for r in results:
        best = max(r["peers"], key=r["peers"].get)
        top = max(r["oracles"].values())
        cells = " | ".join(f"{r['oracles'][n]:.4f}" for n in names)
        print(f"| {r['case']} | {r['customers']:,} | {best} {r['peers'][best]:.4f} | {cells} "
              f"| {top - r['peers'][best]:+.4f} |")
    print("\nBase rate: the latest matured cutoff (D − 90 days) against D\n")
    print("| case | cutoff | churn rate there | churn rate at D | shift |")
    print("|---|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['matured_cutoff'].date()} | {r['matured_rate']:.3f} | {r['rate_at_d']:.3f} "
              f"| {r['rate_at_d'] - r['matured_rate']:+.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
