"""Batch scoring on Dask: the scoring core per customer bucket, merged on the client.

Each bucket runs the scoring core's partition step (:func:`churnlens.serving.core.score_partition`:
snapshot, scores, values, selection candidates, drift and band counts, rejects) and its
reasons (:func:`~churnlens.serving.core.explain_rows`). What needs the whole base is merged
from small mergeable pieces by the core, never by collecting the base on the client:
selection (:func:`~churnlens.serving.core.merge_selection`), counts and drift
(:func:`~churnlens.serving.core.merge_counts`). Only the ranking is this engine's own:
buckets split their rows into probability ranges (cut points from per-bucket samples);
each range is sorted on one worker and numbered from the count of the ranges above it, so
the campaign parts come out in rank order.

Output (a directory): ``campaign/part-*.parquet`` (rank order), ``reasons/``, ``rejects/``
(one part per bucket), ``selection.parquet`` (the selected customers, by rank),
``drift.csv``, ``summary.json``, with a campaign id ``contacts.parquet`` (the contact plan),
and ``_SUCCESS``. Actions and the control group need the whole selection (capacities,
strata): each bucket evaluates the rules on its selected rows and the client assigns them
with the core's :func:`~churnlens.serving.core.plan_actions`, as a single process does. With
``--target uplift`` workers load the uplift model by URI too: phase 1 adds the expected uplifts and
the uplift candidates, the client selects customers and actions, phase 2 adds the chosen value and
the uplift reasons, and each bucket sends its riskiest rows the budget could pay for, from which
the client computes the risk list at the same budget (the summary's ``uplift`` block). It is
written in a hidden temp directory and renamed into place only when every task succeeded.
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

from churnlens.config import FeatureConfig, ScoringSettings
from churnlens.engine.dask_features import load_bucket_schema, publish, temp_beside, with_btyd_params
from churnlens.engine.dask_tables import (
    RETRIES,
    StagedData,
    bucket_has_data,
    load_bucket,
    write_parquet_atomic,
)
from churnlens.errors import InputError
from churnlens.features import build_snapshot, observed_until, parse_cutoff
from churnlens.features.catalog import spec_for
from churnlens.model import feature_config_of
from churnlens.serving.core import (
    CAMPAIGN_COLUMNS,
    CampaignActions,
    KnownReasons,
    ScoreSummary,
    action_inputs,
    build_summary,
    campaign_rows,
    check_uplift_model,
    drift_table,
    explain_rows,
    merge_counts,
    merge_selection,
    plan_actions,
    rank_order,
    risk_list_at_budget,
    riskiest_rows,
    score_partition,
    uplift_budget,
    uplift_record,
    with_actions,
    with_chosen_values,
    with_uplift_reasons,
)
from churnlens.serving.explain import reasons_wide
from churnlens.serving.loader import LoadedModel, LoadedUpliftModel, load_model, load_uplift_model
from churnlens.serving.uplift_targeting import VALUE_COLUMN, learnt_rules

#: Probability samples per bucket for the rank ranges.
RANGE_SAMPLES = 256


@functools.lru_cache(maxsize=4)
def worker_model(resolved_uri: str, tracking_uri: str) -> Any:
    """The model, loaded once per worker process (keyed by URI and store)."""
    return load_model(resolved_uri, tracking_uri=tracking_uri).model


@functools.lru_cache(maxsize=4)
def worker_uplift_model(resolved_uri: str, tracking_uri: str) -> Any:
    """The uplift model, loaded once per worker process (read as data, as
    :func:`~churnlens.serving.loader.load_uplift_model` reads it)."""
    return load_uplift_model(resolved_uri, tracking_uri=tracking_uri).model


@dataclass(frozen=True)
class ScoreJob:
    """What every scoring task needs (small and picklable: the model travels as its URI)."""

    staged: StagedData
    model_uri: str
    tracking_uri: str
    cutoff: pd.Timestamp
    tmp: str
    settings: ScoringSettings
    #: with ``--target uplift``: the uplift model's resolved URI and its store
    uplift_uri: tuple[str, str] | None = None
    #: the feature settings to build snapshots with when they differ from the model's own (its
    #: BG/NBD parameters fitted on the whole base, for a model that records none)
    features: FeatureConfig | None = None

    def uplift(self) -> Any:
        """The uplift model on this worker (None without one)."""
        return None if self.uplift_uri is None else worker_uplift_model(*self.uplift_uri)


def _whole_base_features(client: Any, staged: StagedData, model: Any, cutoff: pd.Timestamp) -> FeatureConfig | None:
    """For a model with BG/NBD features that records no BG/NBD parameters (``train`` records them):
    its feature settings with the parameters fitted on the whole base at ``cutoff``, as one process
    fits them, instead of each bucket fitting its own. None when the model's own settings do."""
    config = feature_config_of(model)
    if config.btyd_params is not None or not any(spec_for(f).family == "btyd" for f in model.features):
        return None
    return with_btyd_params(client, staged, [cutoff], config)[cutoff]


def _tables(job: ScoreJob, bucket: int) -> Any:
    return (
        load_bucket(job.staged, bucket)
        if bucket_has_data(job.staged, bucket)
        else load_bucket_schema(job.staged)
    )


def _score_part(bucket: int, job: ScoreJob) -> dict[str, Any]:
    """Phase 1: the scoring core's partition step on one bucket; its rows kept on disk."""
    model = worker_model(job.model_uri, job.tracking_uri)
    tables = _tables(job, bucket)
    snapshot = None if job.features is None else build_snapshot(tables, job.cutoff, job.features)
    part = score_partition(model, tables, job.cutoff, job.settings, snapshot=snapshot, uplift=job.uplift())
    tmp = Path(job.tmp)
    write_parquet_atomic(part.scores, tmp / "_scores" / f"part-{bucket:05d}.parquet")
    write_parquet_atomic(part.snapshot.reset_index(), tmp / "_snapshot" / f"part-{bucket:05d}.parquet")
    write_parquet_atomic(part.rejects, tmp / "rejects" / f"part-{bucket:05d}.parquet")
    proba = np.sort(part.scores["churn_probability"].to_numpy())
    sample = proba[np.linspace(0, len(proba) - 1, min(len(proba), RANGE_SAMPLES)).astype(int)] if len(proba) else proba
    return {"counts": part.counts, "candidates": part.candidates, "sample": sample}


def _campaign_part(
    bucket: int,
    job: ScoreJob,
    chosen: pd.Index,
    cuts: np.ndarray,
    picks: pd.DataFrame | None = None,
    budget: float = 0.0,
) -> dict[str, Any]:
    """Phase 2: campaign rows (without rank) and reasons of one bucket, split by probability range;
    the action rules' verdicts on its selected rows. With ``--target uplift`` (``picks``: the
    selection's customer_id, action and expected incremental value): the chosen value and the uplift
    reasons on its rows, and its part of the risk list at ``budget``."""
    model = worker_model(job.model_uri, job.tracking_uri)
    tmp = Path(job.tmp)
    scores = pd.read_parquet(tmp / "_scores" / f"part-{bucket:05d}.parquet")
    scores["customer_id"] = scores["customer_id"].astype("string")
    snapshot = pd.read_parquet(tmp / "_snapshot" / f"part-{bucket:05d}.parquet")
    snapshot = snapshot.set_index(pd.Index(snapshot.pop("customer_id").astype("string"), name="customer_id"))
    mask = scores["customer_id"].isin(chosen).to_numpy(dtype=bool)
    uplift = job.uplift()
    if uplift is not None:
        scores = with_chosen_values(scores, picks)
    order = rank_order(scores)
    explain = np.ones(len(scores), dtype=bool) if job.settings.explain_all else mask
    explained = snapshot.iloc[order[explain[order]]]
    reasons = explain_rows(model, explained, job.settings)
    write_parquet_atomic(reasons, tmp / "reasons" / f"part-{bucket:05d}.parquet")
    inputs = action_inputs(job.settings, scores, snapshot, reasons, mask)
    campaign = campaign_rows(scores, mask, reasons, job.settings)
    risky = None
    if uplift is not None:
        campaign = with_uplift_reasons(campaign, uplift, snapshot, picks, job.settings)
        rules, _ = learnt_rules(job.settings.actions, uplift)
        risky = riskiest_rows(model, rules, scores, snapshot, budget, job.settings,
                              known=KnownReasons(explained.index, reasons))
    proba = campaign["churn_probability"].to_numpy()
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
    return {"counts": counts, "inputs": inputs, "hidden": reasons.attrs.get("hidden", 0), "risky": risky}


def _rank_part(r: int, job: ScoreJob, offset: int, actions: CampaignActions | None = None) -> pd.DataFrame:
    """Phase 3: sort one probability range, number its rows, add the actions, write it; return its
    selected rows."""
    tmp = Path(job.tmp)
    files = sorted((tmp / "_ranked" / f"r={r:05d}").glob("b=*.parquet"))
    if not files:
        return pd.DataFrame()
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame = frame.iloc[rank_order(frame)].reset_index(drop=True)
    frame["rank"] = np.arange(offset + 1, offset + len(frame) + 1, dtype="int64")
    frame = with_actions(frame, actions)
    write_parquet_atomic(frame, tmp / "campaign" / f"part-{r:05d}.parquet")
    return frame[frame["selected"].to_numpy(dtype=bool)]


def _range_cuts(samples: list[np.ndarray], n_ranges: int) -> np.ndarray:
    """Descending probability cut points splitting the pooled samples into ~equal ranges."""
    pooled = np.concatenate([s for s in samples if len(s)]) if any(len(s) for s in samples) else np.zeros(0)
    if len(pooled) == 0 or n_ranges <= 1:
        return np.zeros(0)
    cuts = np.unique(np.quantile(pooled, np.linspace(0, 1, n_ranges + 1)[1:-1]))
    return cuts[::-1]


def score_on_dask(
    client: Any,
    staged: StagedData,
    out_dir: str | Path,
    loaded: LoadedModel,
    settings: ScoringSettings | None = None,
    *,
    cutoff: pd.Timestamp | str | None = None,
    uplift: LoadedUpliftModel | None = None,
    **options: Any,
) -> ScoreSummary:
    """Score every active customer on Dask; write the campaign as partitioned Parquet.

    Each customer bucket goes through the scoring core's partition step
    (:func:`~churnlens.serving.core.score_partition`); selection, counts and drift are merged
    as in a single process, so the answers equal :func:`churnlens.serving.score_base`'s.

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
    settings : ScoringSettings, optional
    cutoff : Timestamp or str, optional
        Exclusive cutoff; None = the day after the data's last event.
    uplift : LoadedUpliftModel, optional
        Needed by ``target="uplift"`` (as :func:`churnlens.serving.score_base`'s): workers load
        ``uplift.resolved_uri`` once each. The risk list at the same budget is pooled from each
        bucket's riskiest rows with a fitting action the budget could pay for
        (:func:`churnlens.serving.core.riskiest_rows`), so an action of cost 0 (the whole base)
        is refused.
    **options
        Fields of :class:`~churnlens.config.ScoringSettings` set on top of ``settings``.

    Returns
    -------
    ScoreSummary
        Equal to the local run's summary for the same data (timings aside).
    """
    settings = (settings or ScoringSettings()).override(**options)
    model = loaded.model
    when = observed_until(staged) if cutoff is None else parse_cutoff(cutoff)
    rules, notes = _check_uplift(settings, loaded, uplift)
    out = Path(out_dir).resolve()
    tmp = temp_beside(out)
    job = ScoreJob(staged=staged, model_uri=loaded.resolved_uri, tracking_uri=loaded.tracking_uri, cutoff=when,
                   tmp=str(tmp), settings=settings,
                   uplift_uri=None if rules is None else (uplift.resolved_uri, uplift.tracking_uri),
                   features=_whole_base_features(client, staged, model, when))  # fmt: skip
    seconds: dict[str, float] = {}
    buckets = range(staged.n_buckets)
    try:
        t0 = time.perf_counter()
        first = client.gather(client.map(_score_part, buckets, job=job, pure=False, retries=RETRIES))
        seconds["features_and_scoring"] = time.perf_counter() - t0
        selected = merge_selection(settings, [f["candidates"] for f in first])
        chosen = pd.Index(selected["customer_id"].astype("string"))
        cuts = _range_cuts([f["sample"] for f in first], staged.n_buckets)
        t0 = time.perf_counter()
        # the selection can be large (top 1M): send it once to every worker, not inside each task
        shared = client.scatter(chosen, broadcast=True, hash=False)
        uplift_args: dict[str, Any] = {}
        if rules is not None:
            picks = selected[["customer_id", "action", VALUE_COLUMN]].reset_index(drop=True)
            uplift_args = {"picks": client.scatter(picks, broadcast=True, hash=False),
                           "budget": uplift_budget(settings, selected)}  # fmt: skip
        second = client.gather(
            client.map(
                _campaign_part, buckets, job=job, chosen=shared, cuts=cuts, pure=False, retries=RETRIES,
                **uplift_args,
            )
        )
        counts = [s["counts"] for s in second]
        seconds["explaining"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # actions need the whole selection (capacities); the same step as a single process
        actions = plan_actions(settings, [s["inputs"] for s in second], cutoff=when, selected=selected)
        shared_actions = None if actions is None else client.scatter(actions, broadcast=True, hash=False)
        if actions is not None and actions.plan is not None:
            write_parquet_atomic(actions.plan.contacts, tmp / "contacts.parquet")
        per_range = np.sum(counts, axis=0) if counts else np.zeros(1, dtype=int)
        offsets = np.concatenate([[0], np.cumsum(per_range)[:-1]]).astype(int)
        ranked = client.gather(
            [
                client.submit(_rank_part, r, job, int(offsets[r]), shared_actions, pure=False, retries=RETRIES)
                for r in range(len(per_range))
            ]
        )
        seconds["ranking"] = time.perf_counter() - t0
        columns = (
            CAMPAIGN_COLUMNS
            + ([] if actions is None else actions.columns)
            + list(reasons_wide(pd.DataFrame(), settings.reasons).columns)
        )
        # no one selected: an empty frame with the campaign's columns (uplift ones included)
        empty = next((s for s in ranked if len(s.columns)), pd.DataFrame(columns=columns))
        selection_frame = pd.concat([s for s in ranked if len(s)] or [empty])
        write_parquet_atomic(selection_frame.reset_index(drop=True), tmp / "selection.parquet")

        uplift_summary = None
        if rules is not None:
            t0 = time.perf_counter()
            budget = uplift_args["budget"]
            risk = risk_list_at_budget(rules, [s["risky"] for s in second], budget, settings)
            uplift_summary = uplift_record(uplift.model, uplift, selected, risk, budget, notes)
            seconds["uplift"] = time.perf_counter() - t0
        merged = merge_counts([f["counts"] for f in first])
        drift = drift_table(model, merged, settings.psi_threshold)
        drift.to_csv(tmp / "drift.csv", index=False)
        summary = build_summary(
            cutoff=when, model_name=loaded.name, model_version=loaded.version, settings=settings,
            counts=merged, selected=selected, drift=drift, seconds=seconds, actions=actions, model=loaded,
            model_uri=loaded.resolved_uri, reasons_hidden=sum(int(s["hidden"]) for s in second),
            uplift=uplift_summary,
        )  # fmt: skip
        record = summary.to_dict()
        if record.get("plan"):
            record["plan"] = {**record["plan"], "contacts_file": "contacts.parquet", "list_file": "campaign"}
        (tmp / "summary.json").write_text(json.dumps(record, indent=1, default=str))
        for scratch in ("_scores", "_snapshot", "_ranked"):
            shutil.rmtree(tmp / scratch, ignore_errors=True)
        publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _check_uplift(
    settings: ScoringSettings, loaded: LoadedModel, uplift: LoadedUpliftModel | None
) -> tuple[list[Any] | None, list[str]]:
    """With ``--target uplift``: the learnt rules and their notes, after the checks a local run makes
    (refused before any work); (None, []) otherwise."""
    if settings.target != "uplift":
        return None, []
    check_uplift_model(getattr(uplift, "model", uplift), loaded.model)
    if not isinstance(uplift, LoadedUpliftModel):
        raise InputError("--engine dask --target uplift: workers load the uplift model by its URI; give a "
                         "LoadedUpliftModel (churnlens.serving.loader.load_uplift_model)")  # fmt: skip
    rules, notes = learnt_rules(settings.actions, uplift.model, lang=settings.lang)
    free = [r.name for r in rules if float(r.cost) <= 0]
    if free:
        raise InputError(
            f"--engine dask --target uplift: action(s) {free} cost 0, so the risk list at the same budget "
            "would be the whole base, which the Dask engine does not collect; give them a cost or use --engine local"
        )
    return rules, notes


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
    for column in [c for c in frame.columns if c.startswith(("reason_", "uplift_reason_"))]:
        frame[column] = frame[column].astype("string").to_numpy()
    return frame
