"""Batch scoring on Dask: score and explain per customer bucket, rank and select globally.

The same per-customer code as :func:`churnlens.serving.score_base` runs per bucket
(snapshot, model preparation, prediction, calibration, customer value, SHAP reasons,
rejects). What needs the whole base is done on small summaries, never by collecting the
base on the client:

- **selection** — top N: each bucket sends its own top N candidates; budget: each bucket
  sends its best ``floor(budget / cost)`` customers with a positive expected net value;
  the client merges them with the local rules' order (probability or net value
  descending, ties by customer id), which gives exactly the local selection;
- **rank** — buckets split their rows into probability ranges (cut points from per-bucket
  samples); each range is sorted on one worker and numbered from the count of the ranges
  above it, so the campaign parts come out in rank order;
- **drift** — buckets count values in the training reference bins; the client sums counts.

Output (a directory): ``campaign/part-*.parquet`` (rank order), ``reasons/``, ``rejects/``
(one part per bucket), ``selection.parquet`` (the selected customers, by rank),
``drift.csv``, ``summary.json`` and ``_SUCCESS``. It is written in a hidden temp directory
and renamed into place only when every task succeeded.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlens.engine.dask_features import load_bucket_schema, publish, temp_beside
from churnlens.engine.dask_tables import (
    RETRIES,
    StagedData,
    bucket_has_data,
    load_bucket,
    write_parquet_atomic,
)
from churnlens.features import build_snapshot
from churnlens.monitoring import PSI_ALERT, PSI_WARN, psi
from churnlens.serving.batch import (
    CAMPAIGN_COLUMNS,
    DEFAULT_BANDS,
    ScoreSummary,
    check_bands,
    customer_values,
    explain_rows,
    model_feature_config,
    risk_bands,
)
from churnlens.serving.drift import DRIFT_COLUMNS, SCORE_COLUMN
from churnlens.serving.explain import reasons_wide
from churnlens.serving.loader import LoadedModel, check_compatible, load_model
from churnlens.serving.rejects import find_rejects
from churnlens.serving.targeting import (
    Budget,
    Economics,
    HighRisk,
    Rule,
    Threshold,
    TopN,
    apply_rule,
    summarize,
)

#: Probability samples per bucket for the rank ranges.
RANGE_SAMPLES = 256
_ORDER = (["churn_probability", "customer_id"], [False, True])


@functools.lru_cache(maxsize=4)
def worker_model(resolved_uri: str, tracking_uri: str) -> Any:
    """The model, loaded once per worker process (keyed by URI and store)."""
    return load_model(resolved_uri, tracking_uri=tracking_uri).model


@dataclass(frozen=True)
class ScoreJob:
    """What every scoring task needs (small and picklable: the model travels as its URI)."""

    staged: StagedData
    model_uri: str
    tracking_uri: str
    cutoff: pd.Timestamp
    tmp: str
    lang: str
    n_reasons: int
    bands: tuple[float, float]
    value_column: str | None
    rule: Rule
    economics: Economics
    explain_all: bool


def _tables(job: ScoreJob, bucket: int) -> Any:
    return (
        load_bucket(job.staged, bucket)
        if bucket_has_data(job.staged, bucket)
        else load_bucket_schema(job.staged)
    )


def _margin(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Raw margin of prepared rows, by the model's own method when it has one (as batch scoring)."""
    if hasattr(model, "margin_of_prepared"):
        return model.margin_of_prepared(X)
    return model.booster.predict(X, raw_score=True) if len(X) else np.zeros(0)


def _drift_counts(model: Any, snapshot: pd.DataFrame, proba: np.ndarray) -> dict[str, Any]:
    """Per referenced column: counts per training bin (numeric) or per level (categorical)."""
    reference = model.metadata.get("reference", {})
    wanted = [f for f in model.features if f in reference and f in snapshot.columns]
    frame = snapshot[wanted].reset_index(drop=True)
    if SCORE_COLUMN in reference:
        frame = frame.assign(**{SCORE_COLUMN: proba})
    out: dict[str, Any] = {}
    for name in frame.columns:
        ref = reference[name]
        if ref["kind"] == "numeric":
            x = pd.to_numeric(frame[name], errors="coerce").astype("float64").to_numpy(na_value=np.nan)
            missing = np.isnan(x)
            edges = np.asarray(ref["edges"], dtype=float)
            counts = np.bincount(np.searchsorted(edges, x[~missing], side="left"), minlength=len(edges) + 1)
            out[name] = np.append(counts, missing.sum()).astype(np.int64)
        else:
            counts = frame[name].astype("string").fillna("<missing>").value_counts()
            out[name] = {str(k): int(v) for k, v in counts.items()}
    return out


def _score_part(bucket: int, job: ScoreJob) -> dict[str, Any]:
    """Phase 1: snapshot, scores and values of one bucket; its selection candidates."""
    model = worker_model(job.model_uri, job.tracking_uri)
    tables = _tables(job, bucket)
    snapshot = build_snapshot(tables, job.cutoff, model_feature_config(model))
    check_compatible(model, snapshot, tables=tables)
    X = model.prepare(snapshot)
    proba = np.asarray(model.calibrator.transform(_margin(model, X)), dtype="float64")
    values, value_source = customer_values(tables, snapshot, job.cutoff, job.value_column)
    ids = pd.array(snapshot.index, dtype="string")
    scores = pd.DataFrame({"customer_id": ids, "churn_probability": proba, "customer_value": values})
    tmp = Path(job.tmp)
    write_parquet_atomic(scores, tmp / "_scores" / f"part-{bucket:05d}.parquet")
    write_parquet_atomic(snapshot.reset_index(), tmp / "_snapshot" / f"part-{bucket:05d}.parquet")
    rejects = find_rejects(
        tables, job.cutoff, snapshot.index, active_window_days=model_feature_config(model).active_window_days
    )
    write_parquet_atomic(rejects, tmp / "rejects" / f"part-{bucket:05d}.parquet")

    econ = job.economics
    candidates = scores.iloc[:0]
    if isinstance(job.rule, TopN):
        candidates = scores.sort_values(*_ORDER[:1], ascending=_ORDER[1], kind="stable").head(int(job.rule.n))
    elif isinstance(job.rule, Budget):
        net = proba * econ.save_rate * econ.values(values) - econ.cost_per_contact if len(proba) else proba
        cap = (
            len(proba)
            if econ.cost_per_contact == 0
            else int(np.floor(job.rule.amount / econ.cost_per_contact + 1e-9))
        )
        ranked = scores.assign(net=net)[net > 0]
        candidates = ranked.sort_values(["net", "customer_id"], ascending=[False, True], kind="stable").head(
            cap
        )
    band = risk_bands(proba, job.bands)
    sample = (
        np.sort(proba)[np.linspace(0, len(proba) - 1, min(len(proba), RANGE_SAMPLES)).astype(int)]
        if len(proba)
        else proba
    )
    return {
        "n": len(proba),
        "candidates": candidates,
        "bands": {b: int((band == b).sum()) for b in ("high", "medium", "low")},
        "value_source": value_source,
        "drift": _drift_counts(model, snapshot, proba),
        "rejects": {str(k): int(v) for k, v in rejects["reason"].value_counts().items()},
        "sample": sample,
    }


def _selected_mask(job: ScoreJob, scores: pd.DataFrame, chosen: pd.Index | None) -> np.ndarray:
    p = scores["churn_probability"].to_numpy()
    if isinstance(job.rule, Threshold):
        return p >= job.rule.probability
    if isinstance(job.rule, HighRisk):
        return p >= job.rule.bound
    assert chosen is not None
    return scores["customer_id"].isin(chosen).to_numpy(dtype=bool)


def _campaign_part(bucket: int, job: ScoreJob, chosen: pd.Index | None, cuts: np.ndarray) -> np.ndarray:
    """Phase 2: campaign rows (without rank) and reasons of one bucket, split by probability range."""
    model = worker_model(job.model_uri, job.tracking_uri)
    tmp = Path(job.tmp)
    scores = pd.read_parquet(tmp / "_scores" / f"part-{bucket:05d}.parquet")
    snapshot = pd.read_parquet(tmp / "_snapshot" / f"part-{bucket:05d}.parquet")
    snapshot = snapshot.set_index(pd.Index(snapshot.pop("customer_id").astype("string"), name="customer_id"))
    proba = scores["churn_probability"].to_numpy()
    values = scores["customer_value"].to_numpy()
    mask = _selected_mask(job, scores, chosen)
    order = np.argsort(-proba, kind="stable")  # ids are sorted: ties stay in id order, as locally
    explain = np.ones(len(proba), dtype=bool) if job.explain_all else mask
    reasons = explain_rows(
        model, snapshot.iloc[order[explain[order]]], n_reasons=job.n_reasons, lang=job.lang
    )
    write_parquet_atomic(reasons, tmp / "reasons" / f"part-{bucket:05d}.parquet")
    ids = pd.Index(scores["customer_id"].astype("string"), name="customer_id")
    campaign = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "churn_probability": proba,
            "risk_band": pd.array(risk_bands(proba, job.bands), dtype="string"),
            "rank": np.zeros(len(proba), dtype="int64"),
            "customer_value": values,
            "value_at_risk": proba * np.clip(np.nan_to_num(values, nan=0.0), 0.0, None),
            "selected": mask,
        }
    )
    wide = reasons_wide(reasons, job.n_reasons).reindex(ids)
    for column in wide.columns:
        campaign[column] = wide[column].to_numpy()
    # range r holds probabilities in (cuts[r], cuts[r-1]]: range 0 is the most at risk
    ranges = (
        len(cuts) - np.searchsorted(cuts[::-1], proba, side="left")
        if len(cuts)
        else np.zeros(len(proba), int)
    )
    counts = np.bincount(ranges, minlength=len(cuts) + 1)
    for r in np.flatnonzero(counts):
        part = campaign[ranges == r]
        write_parquet_atomic(part, tmp / "_ranked" / f"r={r:05d}" / f"b={bucket:05d}.parquet")
    return counts


def _rank_part(r: int, job: ScoreJob, offset: int) -> pd.DataFrame:
    """Phase 3: sort one probability range, number its rows, write it; return its selected rows."""
    tmp = Path(job.tmp)
    files = sorted((tmp / "_ranked" / f"r={r:05d}").glob("b=*.parquet"))
    if not files:
        return pd.DataFrame()
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame = frame.sort_values(_ORDER[0], ascending=_ORDER[1], kind="stable").reset_index(drop=True)
    frame["rank"] = np.arange(offset + 1, offset + len(frame) + 1, dtype="int64")
    write_parquet_atomic(frame, tmp / "campaign" / f"part-{r:05d}.parquet")
    return frame[frame["selected"].to_numpy(dtype=bool)]


def _range_cuts(samples: list[np.ndarray], n_ranges: int) -> np.ndarray:
    """Descending probability cut points splitting the pooled samples into ~equal ranges."""
    pooled = np.concatenate([s for s in samples if len(s)]) if any(len(s) for s in samples) else np.zeros(0)
    if len(pooled) == 0 or n_ranges <= 1:
        return np.zeros(0)
    cuts = np.unique(np.quantile(pooled, np.linspace(0, 1, n_ranges + 1)[1:-1]))
    return cuts[::-1]


def _merge_selection(rule: Rule, parts: list[pd.DataFrame], economics: Economics) -> pd.Index | None:
    """The selected customer ids, from the buckets' candidates, with the local rules' order."""
    if not isinstance(rule, TopN | Budget):
        return None
    pool = pd.concat(parts, ignore_index=True)
    if isinstance(rule, TopN):
        pool = pool.sort_values(*_ORDER[:1], ascending=_ORDER[1], kind="stable").head(int(rule.n))
    else:
        cap = (
            len(pool)
            if economics.cost_per_contact == 0
            else int(np.floor(rule.amount / economics.cost_per_contact + 1e-9))
        )
        pool = pool.sort_values(["net", "customer_id"], ascending=[False, True], kind="stable").head(cap)
    return pd.Index(pool["customer_id"].astype("string"))


def _merge_drift(model: Any, parts: list[dict[str, Any]], total: int, threshold: float) -> pd.DataFrame:
    """PSI from summed counts, as :func:`churnlens.serving.drift.drift_report` computes it."""
    reference = model.metadata.get("reference", {})
    rows = []
    names = list(parts[0]) if parts else []
    for name in names:
        ref = reference[name]
        if ref["kind"] == "numeric":
            counts = np.sum([p[name] for p in parts], axis=0).astype(float)
            value = psi(ref["shares"], counts / max(total, 1))
        else:
            counts: dict[str, int] = {}
            for p in parts:
                for k, v in p[name].items():
                    counts[k] = counts.get(k, 0) + v
            shares = pd.Series(counts, dtype="float64").sort_values(ascending=False, kind="stable") / max(
                total, 1
            )
            levels = list(ref["shares"])
            expected = [ref["shares"][k] for k in levels] + [0.0]
            actual = [float(shares.get(k, 0.0)) for k in levels] + [
                float(shares[~shares.index.isin(levels)].sum())
            ]
            value = psi(expected, actual)
        status = "major" if value > PSI_ALERT else "moderate" if value > PSI_WARN else "stable"
        rows.append({"feature": name, "psi": value, "status": status})
    table = pd.DataFrame(rows, columns=["feature", "psi", "status"])
    table = table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
    table["flagged"] = table["psi"] > threshold
    return table[DRIFT_COLUMNS]


def score_on_dask(
    client: Any,
    staged: StagedData,
    out_dir: str | Path,
    loaded: LoadedModel,
    *,
    cutoff: pd.Timestamp | str | None = None,
    lang: str = "en",
    n_reasons: int = 3,
    bands: tuple[float, float] = DEFAULT_BANDS,
    value_column: str | None = None,
    selection: Rule | None = None,
    economics: Economics | None = None,
    explain_all: bool = False,
    psi_threshold: float = PSI_ALERT,
) -> ScoreSummary:
    """Score every active customer on Dask; write the campaign as partitioned Parquet.

    Parameters
    ----------
    client : distributed.Client
    staged : StagedData
        Tables bucketed by :func:`churnlens.engine.stage_tables`.
    out_dir : str or Path
        Output directory (see the module docstring); replaced only on success.
    loaded : LoadedModel
        Loaded on the client for its metadata; workers load ``loaded.resolved_uri`` once
        each (an alias is resolved once, so every worker scores with the same version).
    cutoff, lang, n_reasons, bands, value_column, selection, economics, explain_all, psi_threshold
        As for :func:`churnlens.serving.score_base`.

    Returns
    -------
    ScoreSummary
        Equal to the local run's summary for the same data (timings aside).
    """
    if lang not in ("en", "fr"):
        raise ValueError(f"language must be en or fr, got {lang!r}")
    if int(n_reasons) != n_reasons or n_reasons < 1:
        raise ValueError(f"the number of reasons must be a whole number >= 1, got {n_reasons}")
    bands = check_bands(bands)
    model = loaded.model
    when = staged.data_end.normalize() + pd.Timedelta(days=1) if cutoff is None else pd.Timestamp(cutoff)
    economics = economics or Economics.from_metadata(model.metadata)
    rule = selection or HighRisk(bands[0])
    out = Path(out_dir).resolve()
    tmp = temp_beside(out)
    job = ScoreJob(
        staged=staged, model_uri=loaded.resolved_uri, tracking_uri=loaded.tracking_uri, cutoff=when,
        tmp=str(tmp), lang=lang, n_reasons=int(n_reasons), bands=bands, value_column=value_column,
        rule=rule, economics=economics, explain_all=explain_all,
    )  # fmt: skip
    seconds: dict[str, float] = {}
    buckets = range(staged.n_buckets)
    try:
        t0 = time.perf_counter()
        first = client.gather(client.map(_score_part, buckets, job=job, pure=False, retries=RETRIES))
        seconds["features_and_scoring"] = time.perf_counter() - t0
        chosen = _merge_selection(rule, [f["candidates"] for f in first], economics)
        cuts = _range_cuts([f["sample"] for f in first], staged.n_buckets)
        t0 = time.perf_counter()
        # the selection can be large (top 1M): send it once to every worker, not inside each task
        shared = client.scatter(chosen, broadcast=True, hash=False) if chosen is not None else None
        counts = client.gather(
            client.map(
                _campaign_part, buckets, job=job, chosen=shared, cuts=cuts, pure=False, retries=RETRIES
            )
        )
        seconds["explaining"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        per_range = np.sum(counts, axis=0) if counts else np.zeros(1, dtype=int)
        offsets = np.concatenate([[0], np.cumsum(per_range)[:-1]]).astype(int)
        selected = client.gather(
            [
                client.submit(_rank_part, r, job, int(offsets[r]), pure=False, retries=RETRIES)
                for r in range(len(per_range))
            ]
        )
        seconds["ranking"] = time.perf_counter() - t0
        columns = CAMPAIGN_COLUMNS + list(reasons_wide(pd.DataFrame(), int(n_reasons)).columns)
        selection_frame = pd.concat([s for s in selected if len(s)] or [pd.DataFrame(columns=columns)])
        selection_frame = selection_frame.reset_index(drop=True)
        write_parquet_atomic(selection_frame, tmp / "selection.parquet")

        total = int(sum(f["n"] for f in first))
        drift = _merge_drift(model, [f["drift"] for f in first], total, psi_threshold)
        drift.to_csv(tmp / "drift.csv", index=False)
        by_id = selection_frame.sort_values("customer_id", kind="stable")
        p_sel = by_id["churn_probability"].to_numpy(dtype="float64")
        campaign = summarize(
            p_sel, np.ones(len(p_sel), dtype=bool), cost_per_contact=economics.cost_per_contact,
            save_rate=economics.save_rate,
            value=economics.values(by_id["customer_value"].to_numpy(dtype="float64")),
        )  # fmt: skip
        rejects: dict[str, int] = {}
        for f in first:
            for k, v in f["rejects"].items():
                rejects[k] = rejects.get(k, 0) + v
        rule_text = apply_rule(rule, pd.Series([0.0]), np.zeros(1), economics).rule
        value_source = next((f["value_source"] for f in first if f["n"]), first[0]["value_source"])
        summary = ScoreSummary(
            cutoff=str(when.date()),
            model_name=loaded.name,
            model_version=loaded.version,
            scored=total,
            rejected=int(sum(rejects.values())),
            selected=len(selection_frame),
            rule=rule_text,
            campaign=campaign,
            bands={b: int(sum(f["bands"][b] for f in first)) for b in ("high", "medium", "low")},
            band_bounds=bands,
            explained=total if explain_all else len(selection_frame),
            lang=lang,
            n_reasons=int(n_reasons),
            value_source=value_source
            if economics.value_per_save is None
            else f"{economics.value_per_save:g} per save",
            psi_threshold=float(psi_threshold),
            drift_flagged=drift.loc[drift["flagged"], "feature"].tolist(),
            rejects_by_reason=dict(sorted(rejects.items(), key=lambda kv: -kv[1])),
            seconds=seconds,
        )
        (tmp / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1, default=str))
        for scratch in ("_scores", "_snapshot", "_ranked"):
            shutil.rmtree(tmp / scratch, ignore_errors=True)
        publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def read_campaign(out_dir: str | Path) -> pd.DataFrame:
    """The whole campaign list of a Dask scoring output, in rank order (for tests and small bases)."""
    root = Path(out_dir)
    if not (root / "_SUCCESS").is_file():
        raise FileNotFoundError(f"{root} is not a complete scoring output (no _SUCCESS marker)")
    files = sorted((root / "campaign").glob("part-*.parquet"))
    return as_local_campaign(pd.concat([pd.read_parquet(f) for f in files], ignore_index=True))


def as_local_campaign(frame: pd.DataFrame) -> pd.DataFrame:
    """Campaign rows read from Parquet, typed as :func:`churnlens.serving.score_base` gives them
    (reason columns: object arrays with ``pd.NA`` for no reason)."""
    frame = frame.reset_index(drop=True)
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["risk_band"] = frame["risk_band"].astype("string")
    for column in [c for c in frame.columns if c.startswith("reason_")]:
        frame[column] = frame[column].astype("string").to_numpy()
    return frame
