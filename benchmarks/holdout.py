"""Scoring-date benchmark on real data: train on the history before D, score at D, judge on the real next 90 days.

This is how a new user meets churnlens: keep only the events before a scoring date D, run
``churnlens train`` with the defaults (``--horizon 90``), score every active customer at D,
and compare with what really happened in ``[D, D + 90 days)``. The same customers are scored
by peers fitted on the same history:

- ``recency``: a logistic regression on days since the last purchase;
- ``bgnbd``: BG/NBD (``lifetimes``, daily periods) fitted on all purchases before D;
- ``lgbm_rfm``: a LightGBM with default settings on recency, frequency, monetary value and
  tenure, trained on monthly cutoffs up to D - 90 days (the afternoon model of issue #10);
- ``rfm_logistic``: a logistic regression on the same four features and cutoffs.

The peers' features are computed here with plain pandas, not with churnlens. Active
customers at D: at least one purchase in the 365 days before D (churnlens's definition);
"missing" counts active customers a scorer gave no probability; "mean p" is the mean predicted
probability, to set beside the real churn rate. Churned: no purchase in ``[D, D + 90 days)``.

Cases (Online Retail, 2010-12-01 .. 2011-12-09): D = 2011-06-01 and D = 2011-09-01 with all
history before D, and ``short``: D = 2011-09-01 with only the events from 2011-01-01 on. And
``cdnow``: CDNOW (lifetimes' copy of the master file: 23,570 customers whose first purchase was
in Q1 1997, followed to 1998-06-30; purchases only, one acquisition cohort) at D = 1998-04-01.

Run:  python benchmarks/holdout.py [--data PATH] [--cases june september short cdnow]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

HERE = Path(__file__).resolve().parent
#: Where the data is looked for: $ONLINE_RETAIL, else ``../shared/data/online_retail/`` beside the
#: repository (or beside its parent, for a git worktree under ``wt/``).
DATA_CANDIDATES = [HERE.parent.parent / "shared", HERE.parent.parent.parent / "shared"]
DATA_FILE = Path("data") / "online_retail" / "online_retail_uci.parquet"


def default_data() -> Path:
    if os.environ.get("ONLINE_RETAIL"):
        return Path(os.environ["ONLINE_RETAIL"])
    for root in DATA_CANDIDATES:
        if (root / DATA_FILE).is_file():
            return root / DATA_FILE
    return DATA_CANDIDATES[0] / DATA_FILE


MAPPING = HERE.parent / "examples" / "online_retail" / "mapping.toml"
HORIZON = 90
ACTIVE_DAYS = 365
#: Peers' training cutoffs: every 30 days back from D - 90 days while at least this much history precedes them.
PEER_MIN_HISTORY_DAYS = 30
BGNBD_PENALIZERS = (0.001, 0.01, 0.1, 1.0)
RFM = ["recency", "frequency", "monetary", "tenure"]


@dataclass(frozen=True)
class Case:
    name: str
    scoring_date: pd.Timestamp
    history_start: pd.Timestamp | None = None
    #: "online_retail" (the --data file) or "cdnow" (lifetimes' CDNOW master file).
    dataset: str = "online_retail"


CASES = {
    "june": Case("D = 2011-06-01", pd.Timestamp("2011-06-01")),
    "september": Case("D = 2011-09-01", pd.Timestamp("2011-09-01")),
    "short": Case("D = 2011-09-01, events from 2011-01-01 only", pd.Timestamp("2011-09-01"),
                  pd.Timestamp("2011-01-01")),
    # CDNOW: one acquisition cohort (first purchase in Q1 1997) followed to 1998-06-30, purchases only
    "cdnow": Case("CDNOW, D = 1998-04-01", pd.Timestamp("1998-04-01"), dataset="cdnow"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="UCI Online Retail file (parquet or csv).")
    parser.add_argument("--cases", nargs="*", choices=sorted(CASES), default=["june", "september", "short", "cdnow"])
    parser.add_argument("--dates", nargs="*", default=[],
                        help="Extra scoring dates (YYYY-MM-DD) with all history, e.g. for development runs.")
    parser.add_argument("--seed", type=int, default=42, help="churnlens's training seed.")
    parser.add_argument("--config", type=Path, default=None, help="churnlens TOML config (default: the defaults).")
    parser.add_argument("--csv", type=Path, default=None, help="Also write the table as CSV here.")
    return parser.parse_args(argv)


def load_purchases(path: Path) -> pd.DataFrame:
    """The purchases table of the contract, imported as ``churnlens import-transactions`` does."""
    from churnlens.data.transactions import TransactionColumns, read_table_file, transactions_to_purchases

    purchases, _ = transactions_to_purchases(read_table_file(path), TransactionColumns.from_toml(MAPPING))
    return purchases


def load_cdnow() -> pd.DataFrame:
    """CDNOW's 69,659 purchases by 23,570 customers (lifetimes' ``CDNOW_master.txt``: customer,
    day, CDs, dollars) as the contract's purchases table, one order per customer and day."""
    import lifetimes

    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    raw = pd.read_csv(path, sep=r"\s+", header=0, names=["customer_id", "date", "cds", "amount"],
                      dtype={"customer_id": str, "date": str})
    return pd.DataFrame({
        "customer_id": raw["customer_id"].astype("string"),
        "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
        "amount": raw["amount"].astype(float),
        "order_id": (raw["customer_id"] + "-" + raw["date"] + "-" + raw.index.astype(str)).astype("string"),
    })  # fmt: skip


# ----------------------------------------------------------------------------- peers (plain pandas)


def rfm_at(purchases: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Recency, frequency (orders), monetary (net spend) and tenure in days of the customers active at ``cutoff``."""
    before = purchases[purchases["timestamp"] < cutoff]
    buys = before[before["amount"] >= 0]
    g = buys.groupby("customer_id", observed=True)["timestamp"]
    last, first, count = g.max(), g.min(), g.size()
    spend = before.groupby("customer_id", observed=True)["amount"].sum()
    frame = pd.DataFrame({
        "recency": (cutoff - last) / pd.Timedelta(days=1),
        "frequency": count.astype(float),
        "monetary": spend.reindex(count.index).astype(float),
        "tenure": (cutoff - first) / pd.Timedelta(days=1),
    })  # fmt: skip
    return frame[frame["recency"] <= ACTIVE_DAYS]


def churned(purchases: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index) -> np.ndarray:
    """1 when the customer made no purchase in ``[cutoff, cutoff + HORIZON days)``."""
    window = purchases[(purchases["timestamp"] >= cutoff)
                       & (purchases["timestamp"] < cutoff + pd.Timedelta(days=HORIZON))
                       & (purchases["amount"] >= 0)]
    return (~customers.isin(window["customer_id"].unique())).astype(int)


def peer_training_set(history: pd.DataFrame, scoring_date: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray, list]:
    """RFM rows and labels at monthly cutoffs up to D - 90 days, all labels inside the history."""
    start = history["timestamp"].min()
    cutoffs = []
    c = scoring_date - pd.Timedelta(days=HORIZON)
    while c >= start + pd.Timedelta(days=PEER_MIN_HISTORY_DAYS):
        cutoffs.append(c)
        c -= pd.Timedelta(days=30)
    frames, labels = [], []
    for c in sorted(cutoffs):
        frame = rfm_at(history, c)
        frames.append(frame)
        labels.append(churned(history, c, frame.index))
    return pd.concat(frames), np.concatenate(labels), sorted(cutoffs)


def _log_features(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    x = frame[columns].to_numpy(dtype=float)
    return np.sign(x) * np.log1p(np.abs(x))


def fit_peers(history: pd.DataFrame, scoring_date: pd.Timestamp, at_d: pd.DataFrame, seed: int) -> dict[str, pd.Series]:
    """Each peer's churn probability for the customers of ``at_d``."""
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _ = peer_training_set(history, scoring_date)
    out = {}
    for name, columns in (("recency", ["recency"]), ("rfm_logistic", RFM)):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(_log_features(X, columns), y)
        out[name] = pd.Series(model.predict_proba(_log_features(at_d, columns))[:, 1], index=at_d.index)
    booster = lgb.LGBMClassifier(random_state=seed, verbose=-1, n_jobs=2).fit(X[RFM], y)
    out["lgbm_rfm"] = pd.Series(booster.predict_proba(at_d[RFM])[:, 1], index=at_d.index)
    out["bgnbd"] = bgnbd(history, scoring_date, at_d.index)
    return out


def bgnbd(history: pd.DataFrame, scoring_date: pd.Timestamp, customers: pd.Index) -> pd.Series:
    """lifetimes' BG/NBD P(no purchase in the horizon), smallest penalizer that converges."""
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import ConvergenceError, summary_data_from_transaction_data

    buys = history[(history["amount"] >= 0) & (history["timestamp"] < scoring_date)]
    summary = summary_data_from_transaction_data(
        buys, "customer_id", "timestamp", observation_period_end=scoring_date - pd.Timedelta(days=1), freq="D")
    for penalizer in BGNBD_PENALIZERS:
        try:
            with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                fitter = BetaGeoFitter(penalizer_coef=penalizer).fit(
                    summary["frequency"], summary["recency"], summary["T"])
        except ConvergenceError:
            continue
        s = summary.reindex(customers)
        alive = fitter.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
        r, alpha = fitter.params_["r"], fitter.params_["alpha"]
        quiet = ((alpha + s["T"]) / (alpha + s["T"] + HORIZON)) ** (r + s["frequency"])
        p = pd.Series(np.asarray(1 - alive + alive * quiet, dtype=float), index=customers)
        if p.notna().all():
            return p
    raise RuntimeError(f"BG/NBD did not converge with any penalizer in {BGNBD_PENALIZERS}")


# ----------------------------------------------------------------------------- churnlens


def churnlens_scores(history: pd.DataFrame, scoring_date: pd.Timestamp, seed: int, config_path: Path | None,
                     tracking_dir: Path) -> tuple[pd.Series, dict]:
    """Train churnlens with the defaults on ``history`` and score the active customers at D."""
    from dataclasses import replace

    from churnlens.config import load_config
    from churnlens.data.validate import validate_tables
    from churnlens.features import build_snapshot
    from churnlens.serving import load_model
    from churnlens.serving.batch import model_feature_config
    from churnlens.training import train_model

    tables, _ = validate_tables({"purchases": history})
    cfg = load_config(config_path)
    cfg = replace(cfg, labels=replace(cfg.labels, horizon_days=HORIZON), training=replace(cfg.training, seed=seed))
    started = time.perf_counter()
    uri = f"sqlite:///{tracking_dir / 'mlflow.db'}"
    result = train_model(tables, config=cfg, tracking_uri=uri, model_name="holdout")
    seconds = time.perf_counter() - started
    loaded = load_model(result.model_uri, tracking_uri=uri)
    snapshot = build_snapshot(tables, scoring_date, model_feature_config(loaded.model))
    scores = pd.Series(loaded.model.predict_proba(snapshot), index=snapshot.index.astype(str))
    info = {
        "evaluation": result.evaluation.kind,
        "folds": len(result.evaluation.folds),
        "evaluation_roc_auc": float(result.metrics.loc["model", "roc_auc"]),
        "refit_cutoffs": f"{len(result.refit_cutoffs)} ({result.refit_cutoffs[0].date()}.."
                         f"{result.refit_cutoffs[-1].date()})",
        "trained_through": str(result.trained_through.date()),
        "trees": result.n_trees,
        "seconds": seconds,
        "note": result.history_note or "",
    }
    return scores, info


# ----------------------------------------------------------------------------- the harness


def judge(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    from churnlens.training.metrics import expected_calibration_error

    return {"roc_auc": roc_auc_score(y, p), "pr_auc": average_precision_score(y, p),
            "ece": expected_calibration_error(y, p), "brier": brier_score_loss(y, p), "mean_p": float(np.mean(p))}


def case_history(case: Case, purchases: pd.DataFrame) -> pd.DataFrame:
    """The purchases a case may learn from: before D, and from its history start when it has one."""
    history = purchases[purchases["timestamp"] < case.scoring_date]
    if case.history_start is not None:
        history = history[history["timestamp"] >= case.history_start]
    return history


def run_case(case: Case, purchases: pd.DataFrame, args: argparse.Namespace) -> tuple[pd.DataFrame, dict]:
    history = case_history(case, purchases)
    at_d = rfm_at(history, case.scoring_date)
    active = at_d.index
    y = churned(purchases, case.scoring_date, active)
    with tempfile.TemporaryDirectory() as tmp:
        scores = {}
        scores["churnlens"], info = churnlens_scores(history, case.scoring_date, args.seed, args.config, Path(tmp))
    scores.update(fit_peers(history, case.scoring_date, at_d, args.seed))
    rows = {}
    for name, s in scores.items():
        aligned = s.reindex(active)
        known = aligned.notna().to_numpy()
        rows[name] = {**judge(y[known], aligned.to_numpy()[known]), "scored": int(known.sum()),
                      "missing": int((~known).sum())}
    info.update(active=len(active), churn_rate=float(y.mean()),
                history=f"{history['timestamp'].min().date()} .. {history['timestamp'].max().date()}")
    return pd.DataFrame(rows).T, info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = [CASES[c] for c in args.cases] + [Case(f"D = {d}", pd.Timestamp(d)) for d in args.dates]
    loaders = {"online_retail": lambda: load_purchases(args.data), "cdnow": load_cdnow}
    data = {name: loaders[name]() for name in dict.fromkeys(c.dataset for c in cases)}
    tables, verdicts = [], []
    for case in cases:
        table, info = run_case(case, data[case.dataset], args)
        peers = table.drop(index="churnlens")
        best = peers["roc_auc"].idxmax()
        lead = table.loc["churnlens", "roc_auc"] - peers.loc[best, "roc_auc"]
        ok = lead >= 0.005 and table.loc["churnlens", "ece"] <= 0.03 and table.loc["churnlens", "missing"] == 0
        print(f"\n## {case.name}  (history {info['history']}; {info['active']:,} active customers at D, "
              f"churn rate {info['churn_rate']:.1%})")
        print(f"churnlens: evaluation {info['evaluation']} ({info['folds']} folds, mean ROC AUC "
              f"{info['evaluation_roc_auc']:.4f}), refit on {info['refit_cutoffs']}, trained through "
              f"{info['trained_through']}, {info['trees']} trees, {info['seconds']:.0f} s. {info['note']}")
        print("| scorer | ROC AUC | PR AUC | ECE | Brier | mean p | scored | missing |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, row in table.iterrows():
            print(f"| {name} | {row['roc_auc']:.4f} | {row['pr_auc']:.4f} | {row['ece']:.4f} | {row['brier']:.4f} "
                  f"| {row['mean_p']:.3f} | {int(row['scored']):,} | {int(row['missing'])} |")
        verdict = (f"churnlens - best peer ({best}) ROC AUC = {lead:+.4f}; ECE {table.loc['churnlens', 'ece']:.4f}; "
                   f"missing {int(table.loc['churnlens', 'missing'])} -> {'MET' if ok else 'NOT MET'}")
        print(verdict)
        verdicts.append(ok)
        tables.append(table.assign(case=case.name))
        sys.stdout.flush()
    if args.csv:
        pd.concat(tables).rename_axis("scorer").to_csv(args.csv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
