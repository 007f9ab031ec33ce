"""Batch scoring of a whole base into a campaign list, reasons, rejects and a drift report.

The one-partition case of the scoring core (:mod:`churnlens.serving.core`): the Dask engine
runs the same per-partition step per customer bucket and merges.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ScoringSettings
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features import observed_until, parse_cutoff
from churnlens.model import ChurnModel
from churnlens.serving.core import (
    CAMPAIGN_COLUMNS,
    EXPLAIN_CHUNK,
    KnownReasons,
    ScoreSummary,
    action_inputs,
    build_summary,
    campaign_rows,
    customer_values,
    drift_table,
    explain_rows,
    feature_config_of,
    merge_counts,
    merge_selection,
    plan_actions,
    rank_order,
    risk_bands,
    risk_list_at_budget,
    riskiest_rows,
    score_partition,
    trailing_spend,
    uplift_budget,
    uplift_record,
    with_actions,
    with_chosen_values,
    with_uplift_reasons,
)
from churnlens.serving.loader import LoadedModel
from churnlens.serving.output import commit_outputs, output_format, sibling, table_writer
from churnlens.serving.uplift_targeting import learnt_rules

Progress = Callable[[str, int, int], None]
DEFAULT_BANDS = ScoringSettings().bands

__all__ = [
    "CAMPAIGN_COLUMNS",
    "EXPLAIN_CHUNK",
    "BatchResult",
    "ScoreSummary",
    "customer_values",
    "default_cutoff",
    "model_feature_config",
    "risk_bands",
    "score_base",
    "trailing_spend",
    "write_outputs",
]

#: The feature configuration a model was trained with.
model_feature_config = feature_config_of


@dataclass
class BatchResult:
    """Everything a batch run produces.

    Attributes
    ----------
    campaign : DataFrame
        One row per scored customer, by rank: customer_id, churn_probability, risk_band,
        rank, customer_value, value_at_risk, selected, (with actions or a campaign id:
        action, action_label, action_rule, action_reason, and group with a plan),
        reason_1..reason_n.
    reasons : DataFrame
        Long table: customer_id, rank, feature, value, value_label, contribution (log-odds), text.
    rejects : DataFrame
        customer_id, reason, last_purchase_at, first_event_at.
    drift : DataFrame
        feature, psi, status, flagged (the score as ``churn_probability``).
    summary : ScoreSummary
    contacts : DataFrame or None
        With a campaign id: the contact plan, rows of the ``contacts`` table (control rows
        included) to append once the campaign is sent.
    """

    campaign: pd.DataFrame
    reasons: pd.DataFrame
    rejects: pd.DataFrame
    drift: pd.DataFrame
    summary: ScoreSummary
    contacts: pd.DataFrame | None = None


def check_bands(bands: tuple[float, float]) -> tuple[float, float]:
    """Validate ``(high, medium)`` lower bounds of the risk bands."""
    if len(bands) != 2:
        raise InputError(f"risk bands must be two bounds (high, medium), got {bands!r}")
    return ScoringSettings(high_risk=float(bands[0]), medium_risk=float(bands[1])).bands


def default_cutoff(tables: Tables) -> pd.Timestamp:
    """The cutoff when none is given: the day after the data's last event (:func:`observed_until`)."""
    return observed_until(tables)


def score_base(
    tables: Tables,
    cutoff: pd.Timestamp | str | None,
    model: ChurnModel | LoadedModel,
    settings: ScoringSettings | None = None,
    *,
    snapshot: pd.DataFrame | None = None,
    progress: Progress | None = None,
    source: str | None = None,
    uplift: Any = None,
    **options: Any,
) -> BatchResult:
    """Score every active customer at ``cutoff`` into a campaign list.

    Parameters
    ----------
    tables : Tables
        Validated input tables.
    cutoff : Timestamp or str or None
        Exclusive cutoff; None = the day after the data's last event.
    model : ChurnModel or LoadedModel
    settings : ScoringSettings, optional
        Language, reasons, bands, value, targeting rule, economics, drift threshold.
    snapshot : DataFrame, optional
        A snapshot already built at ``cutoff`` with the model's feature configuration.
    progress : callable(stage, done, total), optional
        Stages ``features``, ``explaining``, ``drift``.
    source : str, optional
        Where ``tables`` came from (a data directory), recorded in the summary.
    uplift : UpliftModel or LoadedUpliftModel, optional
        Needed by ``target="uplift"``: each customer's action of highest expected incremental
        value, the customers within the budget, the uplift's reasons (columns
        ``uplift_reason_1..n``) and, in the summary, the uplift list against the risk list at the
        same budget.
    **options
        Fields of :class:`~churnlens.config.ScoringSettings` set on top of ``settings``
        (``top=100``, ``lang="fr"`` ...).

    Returns
    -------
    BatchResult
    """
    loaded = model if isinstance(model, LoadedModel) else None
    churn_model = loaded.model if loaded else model
    settings = (settings or ScoringSettings()).override(**options)
    step = progress or (lambda stage, done, total: None)
    when = default_cutoff(tables) if cutoff is None else parse_cutoff(cutoff)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    step("features", 0, 1)
    loaded_uplift = uplift if hasattr(uplift, "resolved_uri") else None
    uplift_model = loaded_uplift.model if loaded_uplift is not None else uplift
    part = score_partition(churn_model, tables, when, settings, snapshot=snapshot, uplift=uplift_model)
    step("features", 1, 1)
    seconds["features_and_scoring"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    selected = merge_selection(settings, [part.candidates])
    scores = part.scores
    mask = scores["customer_id"].isin(selected["customer_id"]).to_numpy(dtype=bool)
    if settings.target == "uplift":
        scores = with_chosen_values(scores, selected)
    order = rank_order(scores)
    explain = np.ones(len(scores), dtype=bool) if settings.explain_all else mask
    explained = part.snapshot.iloc[order[explain[order]]]
    reasons = explain_rows(
        churn_model, explained, settings,
        progress=lambda done, total: step("explaining", done, total),
    )  # fmt: skip
    rank = np.empty(len(scores), dtype="int64")
    rank[order] = np.arange(1, len(scores) + 1)
    campaign = campaign_rows(scores, mask, reasons, settings, rank=rank).iloc[order].reset_index(drop=True)
    seconds["explaining"] = time.perf_counter() - t0
    actions = plan_actions(
        settings, [action_inputs(settings, scores, part.snapshot, reasons, mask)], cutoff=when, selected=selected
    )
    campaign = with_actions(campaign, actions)
    uplift_summary = None
    if settings.target == "uplift":
        t0 = time.perf_counter()
        campaign = with_uplift_reasons(campaign, uplift_model, part.snapshot, selected, settings)
        rules, notes = learnt_rules(settings.actions, uplift_model, lang=settings.lang)
        budget = uplift_budget(settings, selected)
        risky = riskiest_rows(churn_model, rules, scores, part.snapshot, budget, settings,
                              known=KnownReasons(explained.index, reasons))
        risk = risk_list_at_budget(rules, [risky], budget, settings)
        uplift_summary = uplift_record(uplift_model, loaded_uplift, selected, risk, budget, notes)
        seconds["uplift"] = time.perf_counter() - t0

    step("drift", 0, 1)
    counts = merge_counts([part.counts])
    drift = drift_table(churn_model, counts, settings.psi_threshold)
    step("drift", 1, 1)
    summary = build_summary(
        cutoff=when,
        model_name=loaded.name if loaded else churn_model.metadata.model_name,
        model_version=loaded.version if loaded else None,
        settings=settings, counts=counts, selected=selected, drift=drift, seconds=seconds, actions=actions,
        model=loaded or churn_model, model_uri=loaded.resolved_uri if loaded else None, data_source=source,
        reasons_hidden=reasons.attrs.get("hidden", 0), uplift=uplift_summary,
    )  # fmt: skip
    return BatchResult(
        campaign=campaign, reasons=reasons, rejects=part.rejects, drift=drift, summary=summary,
        contacts=None if actions is None or actions.plan is None else actions.plan.contacts,
    )  # fmt: skip


def output_paths(out: str | Path, *, contacts: bool = False) -> dict[str, Path]:
    """Where :func:`write_outputs` writes each part for the campaign file ``out``
    (``contacts``: the contact plan ``<stem>.contacts.<ext>`` too)."""
    out = Path(out)
    output_format(out)
    paths = {
        "campaign": out,
        "reasons": sibling(out, "reasons"),
        "rejects": sibling(out, "rejects"),
        "drift": sibling(out, "drift", ".csv"),
        "summary": sibling(out, "summary", ".json"),
    }
    if contacts:
        paths["contacts"] = sibling(out, "contacts")
    return paths


def write_outputs(result: BatchResult, out: str | Path) -> dict[str, Path]:
    """Write the campaign list and, beside it, reasons, rejects, drift and a JSON summary.

    The format (CSV or Parquet) follows the extension of ``out``; ``<stem>.drift.csv`` and
    ``<stem>.summary.json`` are always CSV/JSON. With a contact plan, ``<stem>.contacts.<ext>``
    holds it (the ``contacts`` table's columns) and the summary names it. The files are
    committed together (:func:`~churnlens.serving.output.commit_outputs`): readers see all the
    old ones or all the new ones, never a mix.

    Returns
    -------
    dict of str to Path
    """
    paths = output_paths(out, contacts=result.contacts is not None)
    fmt = output_format(out)
    summary = result.summary.to_dict()
    writers = {
        paths["campaign"]: table_writer(result.campaign, fmt),
        paths["reasons"]: table_writer(result.reasons, fmt),
        paths["rejects"]: table_writer(result.rejects, fmt),
        paths["drift"]: table_writer(result.drift, "csv"),
    }
    if result.contacts is not None:
        writers[paths["contacts"]] = table_writer(result.contacts, fmt)
        files = {"contacts_file": paths["contacts"].name, "list_file": paths["campaign"].name}
        summary["plan"] = {**summary["plan"], **files}
    text = json.dumps(summary, indent=1, default=str)
    writers[paths["summary"]] = lambda tmp: tmp.write_text(text)
    commit_outputs(writers)
    return paths
