"""Batch scoring of a whole base into a campaign list, reasons, rejects and a drift report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.model import ChurnModel
from churnlens.monitoring import PSI_ALERT
from churnlens.serving.drift import drift_report
from churnlens.serving.explain import DEFAULT_CHUNK, REASON_COLUMNS, reasons_wide, top_reasons
from churnlens.serving.loader import LoadedModel, check_compatible
from churnlens.serving.output import output_format, sibling, write_table
from churnlens.serving.rejects import find_rejects
from churnlens.serving.targeting import CampaignSummary, Economics, HighRisk, Rule, Selection, apply_rule

Progress = Callable[[str, int, int], None]
DEFAULT_BANDS = (0.5, 0.2)
CAMPAIGN_COLUMNS = [
    "customer_id",
    "churn_probability",
    "risk_band",
    "rank",
    "customer_value",
    "value_at_risk",
    "selected",
]
#: Rows per explanation chunk of the batch (memory: rows x features x 8 bytes, twice).
EXPLAIN_CHUNK = 20_000


@dataclass(frozen=True)
class ScoreSummary:
    """What a batch run did, for the CLI summary and ``<stem>.summary.json``."""

    cutoff: str
    model_name: str
    model_version: str | None
    scored: int
    rejected: int
    selected: int
    rule: str
    campaign: CampaignSummary
    bands: dict[str, int]
    band_bounds: tuple[float, float]
    explained: int
    lang: str
    n_reasons: int
    value_source: str
    psi_threshold: float
    drift_flagged: list[str]
    rejects_by_reason: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["campaign"] = self.campaign.to_dict()
        out["band_bounds"] = list(self.band_bounds)
        return out


@dataclass
class BatchResult:
    """Everything a batch run produces.

    Attributes
    ----------
    campaign : DataFrame
        One row per scored customer, by rank: customer_id, churn_probability, risk_band,
        rank, customer_value, value_at_risk, selected, reason_1..reason_n.
    reasons : DataFrame
        Long table: customer_id, rank, feature, value, value_label, contribution (log-odds), text.
    rejects : DataFrame
        customer_id, reason, last_purchase_at, first_event_at.
    drift : DataFrame
        feature, psi, status, flagged (the score as ``churn_probability``).
    summary : ScoreSummary
    """

    campaign: pd.DataFrame
    reasons: pd.DataFrame
    rejects: pd.DataFrame
    drift: pd.DataFrame
    summary: ScoreSummary


def check_bands(bands: tuple[float, float]) -> tuple[float, float]:
    """Validate ``(high, medium)`` lower bounds of the risk bands."""
    if len(bands) != 2:
        raise ValueError(f"risk bands must be two bounds (high, medium), got {bands!r}")
    high, medium = float(bands[0]), float(bands[1])
    if not 0 <= medium < high <= 1:
        raise ValueError(
            f"risk band bounds must satisfy 0 <= medium < high <= 1, got high={high}, medium={medium}"
        )
    return high, medium


def risk_bands(probability: np.ndarray, bands: tuple[float, float] = DEFAULT_BANDS) -> np.ndarray:
    """``high`` when p >= high bound, ``medium`` when p >= medium bound, else ``low``."""
    high, medium = check_bands(bands)
    p = np.asarray(probability, dtype="float64")
    return np.where(p >= high, "high", np.where(p >= medium, "medium", "low")).astype(object)


def model_feature_config(model: ChurnModel) -> FeatureConfig:
    """The feature configuration the model was trained with (defaults if not recorded)."""
    raw = dict(model.metadata.get("feature_config") or {})
    known = set(FeatureConfig.__dataclass_fields__)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
    return FeatureConfig(**values)


def default_cutoff(tables: Tables) -> pd.Timestamp:
    """The day after the data's last event: scores "today" for the data as delivered."""
    return tables.data_end.normalize() + pd.Timedelta(days=1)


def trailing_spend(tables: Tables, cutoff: pd.Timestamp, ids: pd.Index, days: int = 365) -> np.ndarray:
    """Net purchase amount in ``[cutoff - days, cutoff)`` per customer of ``ids`` (0 if none)."""
    p = tables.purchases
    mask = ((p["timestamp"] >= cutoff - pd.Timedelta(days=days)) & (p["timestamp"] < cutoff)).to_numpy()
    sums = p.loc[mask].groupby("customer_id", sort=False, observed=True)["amount"].sum()
    sums.index = sums.index.astype("string")
    return sums.reindex(pd.Index(ids, dtype="string")).fillna(0.0).to_numpy(dtype="float64")


def customer_values(
    tables: Tables, snapshot: pd.DataFrame, cutoff: pd.Timestamp, value_column: str | None
) -> tuple[np.ndarray, str]:
    """Value of each customer and where it came from.

    Default: trailing-12-month spend (snapshot column ``spend_365d``, else computed from
    purchases). ``value_column`` names a snapshot column or a numeric column of the
    ``customers`` table.
    """
    if value_column is None:
        if "spend_365d" in snapshot.columns:
            return pd.to_numeric(snapshot["spend_365d"], errors="coerce").to_numpy(
                dtype="float64"
            ), "spend_365d"
        return trailing_spend(tables, cutoff, snapshot.index), "spend in the 365 days before the cutoff"
    if value_column in snapshot.columns and pd.api.types.is_numeric_dtype(snapshot[value_column].dtype):
        return snapshot[value_column].to_numpy(dtype="float64", na_value=np.nan), value_column
    customers = tables.customers
    if customers is None or value_column not in customers.columns:
        numeric = (
            []
            if customers is None
            else [
                c
                for c in customers.columns
                if c != "customer_id" and pd.api.types.is_numeric_dtype(customers[c].dtype)
            ]
        )
        raise ValueError(
            f"value column '{value_column}' is neither a numeric snapshot column nor a column of "
            f"the customers table (numeric customers columns: {numeric})"
        )
    column = customers[value_column]
    if not pd.api.types.is_numeric_dtype(column.dtype):
        raise ValueError(
            f"value column '{value_column}' of the customers table is not numeric (dtype {column.dtype})"
        )
    by_id = pd.Series(
        column.to_numpy(dtype="float64", na_value=np.nan), index=customers["customer_id"].astype("string")
    )
    by_id = by_id[~by_id.index.duplicated()]
    return by_id.reindex(pd.Index(snapshot.index, dtype="string")).to_numpy(
        dtype="float64"
    ), f"customers.{value_column}"


def explain_rows(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    *,
    n_reasons: int,
    lang: str,
    chunk_size: int = EXPLAIN_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Reasons for every row of ``snapshot``, computed chunk by chunk (bounded memory)."""
    parts = []
    total = len(snapshot)
    step = max(int(chunk_size), 1)
    for start in range(0, total, step):
        chunk = snapshot.iloc[start : start + step]
        parts.append(top_reasons(model, chunk, n=n_reasons, lang=lang, chunk_size=min(step, DEFAULT_CHUNK)))
        if progress is not None:
            progress(min(start + step, total), total)
    if not parts:
        return top_reasons(model, snapshot, n=n_reasons, lang=lang)
    return pd.concat(parts, ignore_index=True)[REASON_COLUMNS]


def score_base(
    tables: Tables,
    cutoff: pd.Timestamp | str | None,
    model: ChurnModel | LoadedModel,
    *,
    lang: str = "en",
    n_reasons: int = 3,
    bands: tuple[float, float] = DEFAULT_BANDS,
    value_column: str | None = None,
    selection: Rule | None = None,
    economics: Economics | None = None,
    explain_all: bool = False,
    psi_threshold: float = PSI_ALERT,
    snapshot: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Score every active customer at ``cutoff`` into a campaign list.

    Parameters
    ----------
    tables : Tables
        Validated input tables.
    cutoff : Timestamp or str or None
        Exclusive cutoff; None = the day after the data's last event.
    model : ChurnModel or LoadedModel
    lang : {"en", "fr"}
        Language of the reason sentences.
    n_reasons : int
        Reasons per explained customer.
    bands : (float, float)
        Lower probability bounds of the high and medium risk bands.
    value_column : str, optional
        Customer value column (snapshot or customers table); default trailing-12-month spend.
    selection : TopN, Threshold, Budget or HighRisk, optional
        Targeting rule; default the high risk band.
    economics : Economics, optional
        Cost per contact, save rate, value per save; default the model's training campaign
        settings with each customer's own value.
    explain_all : bool
        Explain every scored customer, not only the selected ones.
    psi_threshold : float
        PSI above which drift is flagged.
    snapshot : DataFrame, optional
        A snapshot already built at ``cutoff`` with the model's feature configuration.
    progress : callable(stage, done, total), optional
        Stages ``features``, ``scoring``, ``explaining``, ``drift``.

    Returns
    -------
    BatchResult
    """
    from churnlens.features import build_snapshot

    loaded = model if isinstance(model, LoadedModel) else None
    churn_model = loaded.model if loaded else model
    if lang not in ("en", "fr"):
        raise ValueError(f"language must be en or fr, got {lang!r}")
    if int(n_reasons) != n_reasons or n_reasons < 1:
        raise ValueError(f"the number of reasons must be a whole number >= 1, got {n_reasons}")
    bands = check_bands(bands)
    step = progress or (lambda stage, done, total: None)
    cutoff = default_cutoff(tables) if cutoff is None else pd.Timestamp(cutoff)
    config = model_feature_config(churn_model)
    economics = economics or Economics.from_metadata(churn_model.metadata)
    selection = selection or HighRisk(bands[0])
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    step("features", 0, 1)
    if snapshot is None:
        snapshot = build_snapshot(tables, cutoff, config)
    if not snapshot.index.is_monotonic_increasing:
        snapshot = snapshot.sort_index()
    step("features", 1, 1)
    seconds["features"] = time.perf_counter() - t0
    check_compatible(churn_model, snapshot, tables=tables)

    t0 = time.perf_counter()
    step("scoring", 0, 1)
    X = churn_model.prepare(snapshot)
    margin = churn_model.margin_of_prepared(X)
    proba = churn_model.calibrator.transform(margin)
    ids = pd.Index(snapshot.index, dtype="string", name="customer_id")
    values, value_source = customer_values(tables, snapshot, cutoff, value_column)
    chosen: Selection = apply_rule(selection, pd.Series(proba, index=ids), values, economics)
    order = np.argsort(-proba, kind="stable")
    rank = np.empty(len(proba), dtype="int64")
    rank[order] = np.arange(1, len(proba) + 1)
    band = risk_bands(proba, bands)
    campaign = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "churn_probability": proba,
            "risk_band": pd.array(band, dtype="string"),
            "rank": rank,
            "customer_value": values,
            "value_at_risk": proba * np.clip(np.nan_to_num(values, nan=0.0), 0.0, None),
            "selected": chosen.mask,
        }
    )
    step("scoring", 1, 1)
    seconds["scoring"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    explain_mask = np.ones(len(proba), dtype=bool) if explain_all else chosen.mask
    to_explain = snapshot.iloc[order[explain_mask[order]]]  # in rank order
    reasons = explain_rows(
        churn_model,
        to_explain,
        n_reasons=n_reasons,
        lang=lang,
        progress=lambda done, total: step("explaining", done, total),
    )
    wide = reasons_wide(reasons, n_reasons).reindex(ids)
    for column in wide.columns:
        campaign[column] = wide[column].to_numpy()
    campaign = campaign.iloc[order].reset_index(drop=True)
    seconds["explaining"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    step("drift", 0, 1)
    drift = drift_report(churn_model, snapshot, pd.Series(proba), threshold=psi_threshold)
    rejects = find_rejects(tables, cutoff, ids, active_window_days=config.active_window_days)
    step("drift", 1, 1)
    seconds["drift_and_rejects"] = time.perf_counter() - t0

    summary = ScoreSummary(
        cutoff=str(cutoff.date()),
        model_name=loaded.name if loaded else str(churn_model.metadata.get("model_name", "churnlens")),
        model_version=loaded.version if loaded else None,
        scored=len(campaign),
        rejected=len(rejects),
        selected=int(chosen.mask.sum()),
        rule=chosen.rule,
        campaign=chosen.summary,
        bands={b: int((band == b).sum()) for b in ("high", "medium", "low")},
        band_bounds=bands,
        explained=int(explain_mask.sum()),
        lang=lang,
        n_reasons=int(n_reasons),
        value_source=value_source
        if economics.value_per_save is None
        else f"{economics.value_per_save:g} per save",
        psi_threshold=float(psi_threshold),
        drift_flagged=drift.loc[drift["flagged"], "feature"].tolist(),
        rejects_by_reason={str(k): int(v) for k, v in rejects["reason"].value_counts().items()},
        seconds=seconds,
    )
    return BatchResult(campaign=campaign, reasons=reasons, rejects=rejects, drift=drift, summary=summary)


def output_paths(out: str | Path) -> dict[str, Path]:
    """Where :func:`write_outputs` writes each part for the campaign file ``out``."""
    out = Path(out)
    output_format(out)
    return {
        "campaign": out,
        "reasons": sibling(out, "reasons"),
        "rejects": sibling(out, "rejects"),
        "drift": sibling(out, "drift", ".csv"),
        "summary": sibling(out, "summary", ".json"),
    }


def write_outputs(result: BatchResult, out: str | Path) -> dict[str, Path]:
    """Write the campaign list and, beside it, reasons, rejects, drift and a JSON summary.

    The format (CSV or Parquet) follows the extension of ``out``; ``<stem>.drift.csv`` and
    ``<stem>.summary.json`` are always CSV/JSON. Every file is written atomically.

    Returns
    -------
    dict of str to Path
    """
    from churnlens.serving.output import atomic_write

    paths = output_paths(out)
    write_table(result.campaign, paths["campaign"])
    write_table(result.reasons, paths["reasons"])
    write_table(result.rejects, paths["rejects"])
    write_table(result.drift, paths["drift"], "csv")
    text = json.dumps(result.summary.to_dict(), indent=1, default=str)
    atomic_write(paths["summary"], lambda tmp: tmp.write_text(text))
    return paths
