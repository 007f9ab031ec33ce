"""Compare churnlens with its peers at the run's backtest origins, on the same customers and labels.

At every backtest origin (test cutoff C) of the registered model's training run, all scorers
are evaluated on the customers active at C, labelled "no purchase in [C, C + H)":

- ``churnlens`` — the run's recipe replayed at C with only the labels matured by C (the
  ``model`` figures the run logged for that origin; the registered model itself was refit on
  every matured label, C's included, so it cannot be judged there);
- ``recency`` and ``rfm_logistic`` — the baselines the run fitted on the same rows;
- ``bgnbd`` — BG/NBD (``churnlens.training.bgnbd``) fitted on all purchase history before C,
  the classic peer for non-contractual churn, computed here.

The script checks that its population at each origin has the size the run logged. It prints
the per-origin table and the mean, and writes them as Markdown (``comparison.md``) and CSV
(``comparison.csv``). For the registered model at a real scoring date, see
``benchmarks/holdout.py``.

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

    from churnlens.config import Economics
    from churnlens.data import load_tables
    from churnlens.features import build_labels, build_snapshot
    from churnlens.serving import load_model
    from churnlens.serving.batch import model_feature_config
    from churnlens.training.metrics import customer_values_of, evaluate

    console = Console()
    loaded = load_model(f"models:/{args.model_name}/{args.version}", tracking_uri=args.tracking_uri)
    meta = loaded.metadata
    if meta.get("evaluation") != "backtest":
        raise SystemExit(f"the run was evaluated by {meta.get('evaluation')}, not a backtest: there are no "
                         "out-of-time origins to compare at; use benchmarks/holdout.py")
    horizon = int(meta["horizon_days"])
    client = MlflowClient()
    logged = {scorer: {m: [p.value for p in sorted(client.get_metric_history(loaded.run_id, f"backtest_{scorer}_{m}"),
                                                    key=lambda p: p.step)]
                       for m in (*SHOWN, "n")}
              for scorer in ("model", "recency", "rfm_logistic")}
    tables, _ = load_tables(args.data_dir)
    economics = Economics(**meta["campaign"])
    frames, penalizers = [], []
    for step, label in enumerate(meta["evaluation_folds"]):
        cutoff = pd.Timestamp(label)
        snapshot = build_snapshot(tables, cutoff, model_feature_config(loaded.model))
        y = build_labels(tables, cutoff, snapshot.index, horizon_days=horizon, mode=meta["label_mode"]).to_numpy()
        if len(y) != int(logged["model"]["n"][step]):
            raise RuntimeError(f"origin {label}: {len(y)} active customers here, {logged['model']['n'][step]:.0f} "
                               "in the run: not the same data")
        rows = {("churnlens" if s == "model" else s): {m: logged[s][m][step] for m in SHOWN} for s in logged}
        p_bgnbd, penalizer = fit_bgnbd(tables, cutoff, snapshot.index, horizon)
        penalizers.append(penalizer)
        rows["bgnbd"] = {m: evaluate(y, p_bgnbd.to_numpy(), economics, customer_values_of(snapshot))[m] for m in SHOWN}
        frames.append(pd.DataFrame(rows).T[list(SHOWN)].assign(origin=label))
    per_origin = pd.concat(frames).rename_axis("scorer").reset_index()
    table = per_origin.groupby("scorer", sort=False)[list(SHOWN)].mean()
    others = table.drop(index="churnlens")
    wins = {m: bool(table.loc["churnlens", m] > others[m].max()) for m in ("roc_auc", "pr_auc")}

    title = (f"Online Retail - mean over {len(meta['evaluation_folds'])} backtest origin(s) "
             f"({', '.join(meta['evaluation_folds'])}), horizon {horizon} days")
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
    per_origin.to_csv(args.out / "comparison.csv", index=False)
    notes = [
        f"# {title}",
        "",
        markdown_table(table),
        "",
        f"- churnlens: the recipe of `models:/{loaded.name}/{loaded.version}` (MLflow run `{loaded.run_id}`) "
        "replayed at each origin with only the labels matured by it (the figures the run logged); the registered "
        f"model itself is refit on every matured cutoff and trained through {meta.get('trained_through')}.",
        "- recency, rfm_logistic: logistic regressions fitted by the same run on the same rows.",
        f"- bgnbd: BG/NBD (lifetimes) fitted at each origin on all purchases before it (daily periods, "
        f"penalizer {', '.join(f'{p:g}' for p in penalizers)}, the smallest of {list(BGNBD_PENALIZERS)} that "
        "converged).",
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
