"""Exact TreeSHAP implementations side by side on the same LightGBM model and rows.

Candidates (each used only if it imports in the running interpreter):

- ``pred_contrib``: LightGBM's own ``Booster.predict(pred_contrib=True)`` (what churnlens uses);
- ``shap.TreeExplainer``: the reference;
- ``fasttreeshap-fixed`` (module ``fasttreeshap_fixed``) algorithms v1 and v2, with
  ``shortcut=False`` so it runs its own TreeSHAP rather than calling LightGBM;
- ``fasttreeshap`` (the original, if it imports).

Each is timed on the same rows and compared with ``pred_contrib`` (max absolute
difference of the per-feature contributions). Needs only lightgbm, numpy, pandas and the
candidates, so it runs in a throwaway venv too::

    python benchmarks/explainers.py --booster model.txt --rows rows.parquet
    python benchmarks/explainers.py --synthetic --trees 500 --leaves 31 --features 60
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd

Explain = Callable[[pd.DataFrame], np.ndarray]


def synthetic(
    trees: int, leaves: int, features: int, rows: int, seed: int = 0
) -> tuple[lgb.Booster, pd.DataFrame]:
    """A binary LightGBM model with exactly ``trees`` trees of up to ``leaves`` leaves."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        rng.normal(size=(max(rows, 20_000), features)), columns=[f"f{i}" for i in range(features)]
    )
    logit = X.iloc[:, :10].to_numpy() @ rng.normal(size=10) + 0.5 * X["f0"] * X["f1"]
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": leaves,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "num_threads": 2,
    }
    booster = lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=trees)
    return booster, X.iloc[:rows].reset_index(drop=True)


def candidates(booster: lgb.Booster) -> dict[str, Explain]:
    """Every implementation that imports here, as ``rows -> (n, features)`` contributions."""
    out: dict[str, Explain] = {"pred_contrib": lambda X: booster.predict(X, pred_contrib=True)[:, :-1]}
    try:
        import shap

        tree = shap.TreeExplainer(booster)
        out["shap.TreeExplainer"] = lambda X: np.asarray(tree.shap_values(X))
    except Exception as exc:  # noqa: BLE001 - report and go on
        print(f"shap: not available ({exc})")
    for module in ("fasttreeshap_fixed", "fasttreeshap"):
        try:
            fts = __import__(module)
        except Exception as exc:  # noqa: BLE001
            print(f"{module}: not available ({type(exc).__name__}: {exc})")
            continue
        for algorithm in ("v1", "v2"):
            try:
                explainer = fts.TreeExplainer(booster, algorithm=algorithm, n_jobs=2, shortcut=False)
            except Exception as exc:  # noqa: BLE001
                print(f"{module} {algorithm}: cannot build ({type(exc).__name__}: {exc})")
                continue
            out[f"{module} {algorithm}"] = (lambda e: lambda X: _values(e.shap_values(X)))(explainer)
    return out


def _values(raw: object) -> np.ndarray:
    values = np.asarray(raw[1] if isinstance(raw, list) else raw)
    return values[..., 1] if values.ndim == 3 else values


def compare(booster: lgb.Booster, rows: pd.DataFrame, *, repeat: int = 1) -> pd.DataFrame:
    """Rows/second, ratio to shap.TreeExplainer and max |difference| to pred_contrib per candidate."""
    warnings.filterwarnings("ignore", message=".*changed to a list of ndarray.*")
    reference = booster.predict(rows, pred_contrib=True)[:, :-1]
    results = []
    for name, explain in candidates(booster).items():
        best = np.inf
        try:
            for _ in range(repeat):
                start = time.perf_counter()
                values = explain(rows)
                best = min(best, time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: failed ({type(exc).__name__}: {exc})")
            continue
        diff = float(np.max(np.abs(values - reference))) if values.shape == reference.shape else float("nan")
        results.append(
            {
                "implementation": name,
                "rows": len(rows),
                "seconds": best,
                "rows_per_s": len(rows) / best,
                "ms_per_row": 1000 * best / len(rows),
                "max_abs_diff_vs_pred_contrib": diff,
                "matches_1e-6": bool(diff <= 1e-6),
            }
        )
    table = pd.DataFrame(results)
    if "shap.TreeExplainer" in set(table["implementation"]):
        shap_rate = table.set_index("implementation").loc["shap.TreeExplainer", "rows_per_s"]
        table["ratio_to_shap"] = table["rows_per_s"] / shap_rate
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--booster", help="LightGBM model text file")
    parser.add_argument("--rows", help="Parquet file of prepared feature rows (model's feature order)")
    parser.add_argument("--synthetic", action="store_true", help="train a synthetic model instead")
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--features", type=int, default=60)
    parser.add_argument("--n", type=int, default=5000, help="rows to explain")
    parser.add_argument("--json", help="also write the table here as JSON records")
    args = parser.parse_args()
    if args.synthetic:
        booster, rows = synthetic(args.trees, args.leaves, args.features, args.n)
        label = f"synthetic {booster.num_trees()} trees x {args.leaves} leaves, {args.features} features"
    else:
        booster = lgb.Booster(model_file=args.booster)
        rows = pd.read_parquet(args.rows).iloc[: args.n]
        label = f"{args.booster}: {booster.num_trees()} trees, {booster.num_feature()} features"
    table = compare(booster, rows)
    print(f"# {label}, {len(rows):,} rows")
    print(table.to_string(index=False, float_format=lambda x: f"{x:,.4g}"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": label, "results": table.to_dict(orient="records")}, fh, indent=1)


if __name__ == "__main__":
    main()
