"""Are the reasons faithful and stable? Measured against the simulator's true churn drivers.

Run:  python benchmarks/explanations.py                 (20k simulated customers, seed 7)
      python benchmarks/explanations.py --customers 5000 --seed 3 --json out.json

A model is trained with churnlens's defaults on a simulated loyalty program; the customers it
scores at the cutoff are explained with the top 3 reasons (concepts). The simulator knows each
customer's true churn-hazard decomposition by driver (engagement, dissatisfaction, program
lapse, downgrade, open support issue, newness; ``churnlens.simulate.simulate_driver_table``) and
which features observe each driver (``DRIVER_FEATURES``). For the top decile of risk:

- **driver recovery**: the share of customers whose largest true driver is observed by one of
  their top-3 reason concepts (a concept observes a driver when one of its features does);
- **rank correlation**: Spearman between the true drivers' sizes (centred log-hazard parts) and
  the reasons' effects summed per driver, averaged over customers;

beside a model-free baseline: for each customer, the three concepts whose features deviate most
from the median customer on the risky side (deviation in units of the median absolute deviation).

**Stability**: for the customers with no event in the week after the cutoff, the share whose top
reason concept changes between the cutoff and a week later (target < 5 %).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

WEEK = pd.Timedelta(days=7)


def concept_drivers(features: list[str], *, indirect: bool) -> dict[str, set[str]]:
    """The drivers each catalog concept of ``features`` observes."""
    from churnlens.features import spec_for
    from churnlens.simulate import driver_features

    observed = driver_features(features, indirect=indirect)
    out: dict[str, set[str]] = {}
    for name in features:
        concept = spec_for(name).concept
        out.setdefault(concept, set()).update(d for d, cols in observed.items() if name in cols)
    return out


def baseline_reasons(snapshot: pd.DataFrame, reference: dict[str, float], n: int = 3) -> pd.DataFrame:
    """Model-free reasons: the ``n`` concepts deviating most from the median on their risky side."""
    from churnlens.features import spec_for

    rows = []
    scores: dict[str, np.ndarray] = {}
    for name in snapshot.columns:
        try:
            spec = spec_for(name)
        except KeyError:
            continue
        if spec.risk_direction not in ("higher", "lower") or name not in reference:
            continue
        x = pd.to_numeric(snapshot[name], errors="coerce").to_numpy(dtype="float64")
        mad = np.nanmedian(np.abs(x - reference[name])) or np.nanstd(x) or 1.0
        deviation = (x - reference[name]) / mad * (1 if spec.risk_direction == "higher" else -1)
        deviation = np.where(np.isnan(deviation), -np.inf, deviation)
        best = scores.get(spec.concept)
        scores[spec.concept] = deviation if best is None else np.maximum(best, deviation)
    concepts = list(scores)
    matrix = np.column_stack([scores[c] for c in concepts])
    top = np.argsort(-matrix, axis=1)[:, :n]
    for i, cid in enumerate(snapshot.index):
        for rank, j in enumerate(top[i], start=1):
            if matrix[i, j] > 0:
                rows.append({"customer_id": cid, "rank": rank, "concept": concepts[j], "effect": matrix[i, j]})
    return pd.DataFrame(rows, columns=["customer_id", "rank", "concept", "effect"])


def faithfulness(
    reasons: pd.DataFrame, truth: pd.DataFrame, drivers_of: dict[str, set[str]], drivers: tuple[str, ...]
) -> dict[str, float]:
    """Driver recovery and mean rank correlation of ``reasons`` (long: customer_id, concept, effect)."""
    truth = truth.set_index("customer_id")
    grouped = {cid: g for cid, g in reasons.groupby("customer_id", sort=False)}
    hits, correlations, judged = 0, [], 0
    for cid, row in truth.iterrows():
        largest = row["largest_driver"]
        if pd.isna(largest):
            continue
        judged += 1
        mine = grouped.get(cid)
        explained = dict.fromkeys(drivers, 0.0)
        if mine is not None:
            for concept, effect in zip(mine["concept"], mine["effect"], strict=True):
                for d in drivers_of.get(concept, ()):
                    explained[d] += float(effect)
            hits += largest in {d for c in mine["concept"] for d in drivers_of.get(c, ())}
        true_sizes = [float(row[f"{d}_centred"]) for d in drivers]
        shown = [explained[d] for d in drivers]
        if np.ptp(shown) > 0 and np.ptp(true_sizes) > 0:
            correlations.append(spearmanr(true_sizes, shown).statistic)
    return {
        "customers": judged,
        "driver_recovery": hits / judged if judged else float("nan"),
        "rank_correlation": float(np.mean(correlations)) if correlations else float("nan"),
    }


def quiet_customers(tables: Any, start: pd.Timestamp, end: pd.Timestamp) -> pd.Index:
    """Customers with no event in any table in ``[start, end)``."""
    busy: set[str] = set()
    for frame in tables.present().values():
        if "timestamp" not in frame.columns:
            continue
        mask = ((frame["timestamp"] >= start) & (frame["timestamp"] < end)).to_numpy()
        busy.update(frame.loc[mask, "customer_id"].astype(str).unique().tolist())
    ids = tables.customer_ids()
    return ids[~ids.isin(busy)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    from churnlens.features import build_snapshot
    from churnlens.serving import load_model
    from churnlens.serving.core import feature_config_of
    from churnlens.serving.explain import reference_medians, top_reasons
    from churnlens.simulate import DRIVERS, simulate, simulate_driver_table
    from churnlens.training import train_model

    t0 = time.perf_counter()
    sim = simulate(args.customers, months=args.months, seed=args.seed)
    tables = sim.tables
    work = Path(tempfile.mkdtemp(prefix="churnlens-explanations-"))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    train_model(tables, tracking_uri=uri)
    loaded = load_model(tracking_uri=uri)
    model = loaded.model
    later = pd.Timestamp(sim.settings.end_ts).normalize()
    cutoff = later - WEEK
    truth = simulate_driver_table(sim, [cutoff])
    config = feature_config_of(model)
    snapshot = build_snapshot(tables, cutoff, config)
    proba = pd.Series(model.predict_proba(snapshot), index=snapshot.index)
    top = proba.sort_values(ascending=False).index[: max(len(proba) // 10, 1)]
    reasons = top_reasons(model, snapshot.loc[top], n=3, lang="en")
    reference = reference_medians(model)
    baseline = baseline_reasons(snapshot.loc[top, model.features], reference)
    truth_top = truth[truth["customer_id"].astype(str).isin(set(top.astype(str)))].copy()
    truth_top["customer_id"] = truth_top["customer_id"].astype("string")
    rows = []
    for indirect in (False, True):
        drivers_of = concept_drivers(model.features, indirect=indirect)
        observed = "direct and indirect" if indirect else "direct"
        for name, found in (("churnlens reasons", reasons), ("median-deviation baseline", baseline)):
            rows.append({"reasons": name, "features observing a driver": observed,
                         **faithfulness(found, truth_top, drivers_of, DRIVERS)})  # fmt: skip
    largest = truth_top["largest_driver"].value_counts(normalize=True).round(3).to_dict()

    # stability: quiet customers, top reason concept at the cutoff and a week later
    quiet = quiet_customers(tables, cutoff, later)
    snap_later = build_snapshot(tables, later, config)
    both = snapshot.index.intersection(snap_later.index).intersection(pd.Index(quiet, dtype="string"))
    first = top_reasons(model, snapshot.loc[both], n=1, lang="en").set_index("customer_id")["concept"]
    second = top_reasons(model, snap_later.loc[both], n=1, lang="en").set_index("customer_id")["concept"]
    common = first.index.intersection(second.index)
    changed = float((first.loc[common] != second.loc[common]).mean()) if len(common) else float("nan")

    print(f"\n{args.customers:,} simulated customers, seed {args.seed}; cutoff {cutoff.date()}; "
          f"top decile {len(top):,} customers; {time.perf_counter() - t0:.0f} s")  # fmt: skip
    print(f"largest true driver in the top decile: {largest}")
    print(f"{'reasons':<27} {'observing features':<21} {'customers':>9} {'recovery':>9} {'rank corr':>9}")
    for r in rows:
        print(f"{r['reasons']:<27} {r['features observing a driver']:<21} {r['customers']:>9,} "
              f"{r['driver_recovery']:>9.3f} {r['rank_correlation']:>9.3f}")  # fmt: skip
    print(f"stability: {len(common):,} customers with no event in the week and a reason at both dates; "
          f"top reason concept changed for {changed:.1%} (target < 5%)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "largest": largest, "stability": {
            "customers": len(common), "changed": changed}}, indent=1, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
