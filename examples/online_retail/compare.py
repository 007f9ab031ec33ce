"""Compare churnlens with its peers on the same out-of-time test cutoff and the same labels.

Scorers, all evaluated on the customers active at the model's test cutoff, labelled
"no purchase in [C, C + H)":

- ``churnlens`` — the registered model reloaded from MLflow and re-scored here (its figures must
  match the ones the training run logged; the script stops if they do not);
- ``recency`` and ``rfm_logistic`` — the baselines fitted by the same training run on the same
  training rows (their figures are read from the run's metrics);
- ``bgnbd`` — BG/NBD (``churnlens.training.bgnbd``) fitted on all purchase history before the
  test cutoff, the classic peer for non-contractual churn.

Prints a table and writes it as Markdown (``comparison.md``) and CSV (``comparison.csv``).

Usage::

    python examples/online_retail/compare.py DATA_DIR --tracking-uri sqlite:///OUT/mlflow.db \\
        --model-name online_retail --out OUT
"""

from __future__ import annotations

import argparse
import io
import os
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from churnlens.data import Tables

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

#: Penalties tried in turn for BG/NBD: on short histories its maximum-likelihood fit can sit on the
#: boundary (a, b -> 0) and fail to converge without some shrinkage.
BGNBD_PENALIZERS = (0.001, 0.01, 0.1, 1.0)
#: Metrics shown; the first two decide who wins.
SHOWN = ("roc_auc", "pr_auc", "brier", "top_decile_lift")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="Directory with purchases.parquet (import-transactions).")
    parser.add_argument("--tracking-uri", required=True, help="MLflow store the model was trained into.")
    parser.add_argument("--model-name", default="online_retail", help="Registered model name.")
    parser.add_argument("--version", default="latest", help="Registered version to compare (default latest).")
    parser.add_argument("--out", type=Path, required=True, help="Directory to write comparison.md/.csv into.")
    return parser.parse_args(argv)


def fit_bgnbd(
    tables: Tables, cutoff: pd.Timestamp, customers: pd.Index, horizon_days: int
) -> tuple[pd.Series, float]:
    """BG/NBD probabilities with the smallest penalty that converges, and that penalty."""
    from lifetimes.utils import ConvergenceError

    from churnlens.training.bgnbd import bgnbd_no_purchase_probability

    for penalizer in BGNBD_PENALIZERS:
        try:
            # lifetimes prints scipy's optimiser state when a fit fails: keep the output readable
            with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore", RuntimeWarning)
                p = bgnbd_no_purchase_probability(
                    tables, cutoff, customers, horizon_days=horizon_days, penalizer=penalizer
                )
        except ConvergenceError:
            continue
        if p.notna().all():
            return p, penalizer
    raise RuntimeError(f"BG/NBD did not converge with any penalizer in {BGNBD_PENALIZERS}")


def markdown_table(table: pd.DataFrame) -> str:
    """The comparison as a GitHub Markdown table, best ROC AUC / PR AUC in bold."""
    header = "| scorer | " + " | ".join(table.columns) + " |"
    rule = "|---|" + "---:|" * len(table.columns)
    best = {"roc_auc": table["roc_auc"].max(), "pr_auc": table["pr_auc"].max()}
    lines = [header, rule]
    for scorer, row in table.iterrows():
        cells = []
        for column, value in row.items():
            text = f"{value:.4f}"
            cells.append(f"**{text}**" if column in best and value == best[column] else text)
        lines.append(f"| {scorer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mlflow.tracking import MlflowClient
    from rich.console import Console
    from rich.table import Table

    from churnlens.data import load_tables
    from churnlens.features import build_labels, build_snapshot
    from churnlens.serving import load_model
    from churnlens.serving.batch import model_feature_config
    from churnlens.training.config import CampaignEconomics
    from churnlens.training.metrics import evaluate

    console = Console()
    loaded = load_model(f"models:/{args.model_name}/{args.version}", tracking_uri=args.tracking_uri)
    meta = loaded.metadata
    cutoff = pd.Timestamp(meta["test_cutoff"])
    horizon = int(meta["horizon_days"])
    run = MlflowClient().get_run(loaded.run_id)
    logged = run.data.metrics

    tables, _ = load_tables(args.data_dir)
    snapshot = build_snapshot(tables, cutoff, model_feature_config(loaded.model))
    y = build_labels(tables, cutoff, snapshot.index, horizon_days=horizon, mode=meta["label_mode"]).to_numpy()
    if len(y) != int(logged["rows_test"]):
        raise RuntimeError(
            f"test population differs from the run's: {len(y)} rows here, {logged['rows_test']:.0f} logged"
        )

    economics = CampaignEconomics(**meta["campaign"])
    rows = {"churnlens": evaluate(y, loaded.model.predict_proba(snapshot), economics)}
    for metric in ("roc_auc", "pr_auc"):
        if not np.isclose(rows["churnlens"][metric], logged[f"test_model_{metric}"], atol=1e-9):
            raise RuntimeError(
                f"reloaded model's {metric} {rows['churnlens'][metric]:.6f} differs from the run's "
                f"{logged[f'test_model_{metric}']:.6f}: not the same model, data or test cutoff"
            )
    for scorer in ("recency", "rfm_logistic"):
        rows[scorer] = {m: logged[f"test_{scorer}_{m}"] for m in SHOWN}
    p_bgnbd, penalizer = fit_bgnbd(tables, cutoff, snapshot.index, horizon)
    rows["bgnbd"] = evaluate(y, p_bgnbd.to_numpy(), economics)

    table = pd.DataFrame(rows).T[list(SHOWN)]
    others = table.drop(index="churnlens")
    wins = {m: bool(table.loc["churnlens", m] > others[m].max()) for m in ("roc_auc", "pr_auc")}

    title = (f"Online Retail — out-of-time test cutoff {cutoff.date()}, horizon {horizon} days, "
             f"{len(y):,} active customers, churn rate {y.mean():.1%}")
    shown = Table(title=title)
    shown.add_column("scorer")
    for column in table.columns:
        shown.add_column(column, justify="right")
    for scorer, row in table.iterrows():
        shown.add_row(scorer, *(f"{v:.4f}" for v in row))
    console.print(shown)
    verdict = ("churnlens beats every peer on ROC AUC and PR AUC" if all(wins.values())
               else f"churnlens does NOT beat every peer: {wins}")
    console.print(verdict)

    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "comparison.csv", index_label="scorer")
    notes = [
        f"# {title}",
        "",
        markdown_table(table),
        "",
        f"- churnlens: `models:/{loaded.name}/{loaded.version}` (MLflow run `{loaded.run_id}`), reloaded and "
        "re-scored; identical to the figures the run logged.",
        "- recency, rfm_logistic: logistic regressions fitted by the same run on the same training cutoffs "
        f"({', '.join(meta['train_cutoffs'])}).",
        f"- bgnbd: BG/NBD (lifetimes) fitted on all purchases before {cutoff.date()} (daily periods, "
        f"penalizer {penalizer:g}, the smallest of {list(BGNBD_PENALIZERS)} that converged).",
        "- pr_auc is average precision with churn as the positive class; brier is for probabilities "
        "(lower is better); top_decile_lift = churn rate in the top 10% / overall churn rate.",
        "",
        verdict + ".",
        "",
    ]
    (args.out / "comparison.md").write_text("\n".join(notes))
    console.print(f"Wrote {args.out / 'comparison.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
