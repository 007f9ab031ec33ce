"""The scoring core: one per-partition step every scoring path calls.

Batch scoring (:func:`churnlens.serving.score_base`), the Dask engine, the HTTP API, the
explanation cards and the web app all score through the functions here, with one
:class:`~churnlens.config.ScoringSettings`:

- :func:`score_rows` — calibrated probability and risk band of each row of a snapshot
  (:class:`~churnlens.model.ChurnModel` is the only thing that predicts); :func:`score_matrix`
  the same from the model matrix, without a frame (the HTTP API's few rows);
- :func:`explain_rows` — the top reasons of rows, in chunks of bounded memory;
  :func:`explain_matrix` the same as arrays from the model matrix (same core,
  :func:`~churnlens.serving.explain.reason_arrays`);
- :func:`score_partition` — a partition of the base (any subset of whole customers): its
  snapshot, scores and values, its selection candidates, drift counts, band counts and
  rejects, all *mergeable*;
- :func:`merge_selection`, :func:`merge_counts` — the whole base from its partitions;
- :func:`campaign_rows`, :func:`build_summary` — the campaign list's rows and the summary.

A single process is the one-partition case; the Dask engine runs :func:`score_partition` per
customer bucket and merges, so both give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from churnlens.config import MEASURED, FeatureConfig, ScoringSettings
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.model import ChurnModel, feature_config_of
from churnlens.monitoring import Counts, add_counts, bin_counts, stability_from_counts
from churnlens.serving.actions import (
    ACTION_COLUMNS,
    RuleInputs,
    assign_actions,
    generic_assignment,
    pool_inputs,
    rule_inputs,
    rules_read_reasons,
)
from churnlens.serving.explain import (
    DEFAULT_CHUNK,
    REASON_COLUMNS,
    ReasonArrays,
    RowsOf,
    reason_arrays,
    reasons_wide,
    top_reasons,
)
from churnlens.serving.holdout import ContactPlan, contact_plan
from churnlens.serving.rejects import find_rejects
from churnlens.serving.targeting import CampaignSummary, describe, rule_of, select_mask, summarize

SCORE_COLUMN = "churn_probability"
DRIFT_COLUMNS = ["feature", "psi", "status", "flagged"]
BANDS = ("high", "medium", "low")
CAMPAIGN_COLUMNS = [
    "customer_id",
    "churn_probability",
    "risk_band",
    "rank",
    "customer_value",
    "value_at_risk",
    "selected",
    "risk_band_label",
]
#: Rows per explanation chunk (memory: rows x features x 8 bytes, twice).
EXPLAIN_CHUNK = 20_000
#: Columns of a partition's scored rows (before rank, selection and reasons).
SCORED_COLUMNS = ["customer_id", "churn_probability", "risk_band", "customer_value", "value_at_risk"]

RowsProgress = Callable[[int, int], None]


# --------------------------------------------------------------------------- model facts


def risk_bands(probability: np.ndarray, bands: tuple[float, float] = ScoringSettings().bands) -> np.ndarray:
    """``high`` when p >= high bound, ``medium`` when p >= medium bound, else ``low``."""
    high, medium = bands
    p = np.asarray(probability, dtype="float64")
    return np.where(p >= high, "high", np.where(p >= medium, "medium", "low")).astype(object)


# --------------------------------------------------------------------------- rows


def score_matrix(model: ChurnModel, matrix: np.ndarray, settings: ScoringSettings) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated churn probability and risk band of each row of ``model.matrix(...)``.

    What :func:`score_rows` computes, without a frame (the HTTP API's few rows).
    """
    proba = model.calibrator.transform(model.margin_of_matrix(matrix))
    return proba, risk_bands(proba, settings.bands)


def score_rows(
    model: ChurnModel, snapshot: pd.DataFrame, settings: ScoringSettings, *, matrix: np.ndarray | None = None
) -> pd.DataFrame:
    """Calibrated churn probability and risk band of every row of ``snapshot`` (same index).

    ``matrix`` is ``model.matrix(snapshot)`` when the caller has it (it explains the same rows).
    """
    proba, bands = score_matrix(model, model.matrix(snapshot) if matrix is None else matrix, settings)
    return pd.DataFrame({SCORE_COLUMN: proba, "risk_band": bands}, index=snapshot.index)


def explain_matrix(
    model: ChurnModel, matrix: np.ndarray, rows_of: RowsOf, settings: ScoringSettings
) -> ReasonArrays:
    """The top ``settings.reasons`` reasons of the rows of ``matrix``, as arrays.

    What :func:`explain_rows` computes for a few rows, without frames: ``rows_of(positions)``
    gives those rows as mappings feature -> value (the values the sentences show).
    """
    return reason_arrays(
        model, matrix, model.contributions_of_matrix(matrix), rows_of, n=settings.reasons, lang=settings.lang,
        labels=settings.labels.get(settings.lang), currency=settings.currency,
    )  # fmt: skip


def explain_rows(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    settings: ScoringSettings,
    *,
    chunk_size: int = EXPLAIN_CHUNK,
    progress: RowsProgress | None = None,
    matrix: np.ndarray | None = None,
) -> pd.DataFrame:
    """The top ``settings.reasons`` reasons of every row of ``snapshot``, chunk by chunk.

    ``matrix`` is ``model.matrix(snapshot)`` when the caller has it.

    Returns
    -------
    DataFrame
        Long table (:data:`~churnlens.serving.explain.REASON_COLUMNS`), rows in snapshot
        order then reason rank.
    """
    step = max(int(chunk_size), 1)
    wording = {"n": settings.reasons, "lang": settings.lang, "currency": settings.currency,
               "labels": settings.labels.get(settings.lang)}
    parts = []
    for start in range(0, len(snapshot), step):
        chunk = snapshot.iloc[start : start + step]
        rows = None if matrix is None else matrix[start : start + step]
        parts.append(top_reasons(model, chunk, chunk_size=min(step, DEFAULT_CHUNK), matrix=rows, **wording))
        if progress is not None:
            progress(min(start + step, len(snapshot)), len(snapshot))
    if not parts:
        return top_reasons(model, snapshot, **wording)
    hidden = sum(part.attrs.get("hidden", 0) for part in parts)
    out = pd.concat(parts, ignore_index=True)[REASON_COLUMNS]
    out.attrs["hidden"] = hidden
    return out


# --------------------------------------------------------------------------- values


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
    """Value of each customer of ``snapshot`` and where it came from.

    Default: trailing-12-month spend (snapshot column ``spend_365d``, else computed from
    purchases). ``value_column`` names a snapshot column or a numeric column of the
    ``customers`` table.
    """
    if value_column is None:
        if "spend_365d" in snapshot.columns:
            return pd.to_numeric(snapshot["spend_365d"], errors="coerce").to_numpy(dtype="float64"), "spend_365d"
        return trailing_spend(tables, cutoff, snapshot.index), "spend in the 365 days before the cutoff"
    if value_column in snapshot.columns and pd.api.types.is_numeric_dtype(snapshot[value_column].dtype):
        return snapshot[value_column].to_numpy(dtype="float64", na_value=np.nan), value_column
    customers = tables.customers
    if customers is None or value_column not in customers.columns:
        numeric = [] if customers is None else [
            c for c in customers.columns if c != "customer_id" and pd.api.types.is_numeric_dtype(customers[c].dtype)
        ]
        raise InputError(
            f"value column '{value_column}' is neither a numeric snapshot column nor a column of "
            f"the customers table (numeric customers columns: {numeric})"
        )
    column = customers[value_column]
    if not pd.api.types.is_numeric_dtype(column.dtype):
        raise InputError(f"value column '{value_column}' of the customers table is not numeric (dtype {column.dtype})")
    ids = customers["customer_id"].astype("string")
    by_id = pd.Series(column.to_numpy(dtype="float64", na_value=np.nan), index=ids)
    by_id = by_id[~by_id.index.duplicated()]
    values = by_id.reindex(pd.Index(snapshot.index, dtype="string")).to_numpy(dtype="float64")
    return values, f"customers.{value_column}"


def value_at_risk(probability: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Churn probability x the customer's value (missing or negative values count as 0)."""
    return probability * np.clip(np.nan_to_num(values, nan=0.0), 0.0, None)


# --------------------------------------------------------------------------- partitions


class KnownReasons(NamedTuple):
    """Customers already explained (some may have no reason rows) and their reasons."""

    customers: pd.Index
    reasons: pd.DataFrame


@dataclass
class PartitionCounts:
    """What the summary needs of a partition; counts of several partitions add up."""

    scored: int = 0
    bands: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BANDS, 0))
    rejects: dict[str, int] = field(default_factory=dict)
    drift: dict[str, Counts] = field(default_factory=dict)
    value_source: str | None = None


@dataclass
class PartitionScores:
    """One partition scored.

    Attributes
    ----------
    snapshot : DataFrame
        The partition's snapshot, sorted by customer id (what reasons are computed from).
    scores : DataFrame
        :data:`SCORED_COLUMNS`, one row per snapshot row, same order.
    candidates : DataFrame
        Rows of ``scores`` the targeting rule selects within this partition; pooled over
        partitions and selected again by :func:`merge_selection`.
    rejects : DataFrame
        Customers of the partition's tables that were not scored, with the reason.
    counts : PartitionCounts
    """

    snapshot: pd.DataFrame
    scores: pd.DataFrame
    candidates: pd.DataFrame
    rejects: pd.DataFrame
    counts: PartitionCounts


def drift_counts(
    model: ChurnModel, snapshot: pd.DataFrame, probability: np.ndarray | None
) -> dict[str, Counts]:
    """:func:`~churnlens.monitoring.bin_counts` of the model's features and of the score (if given)."""
    reference = model.metadata.reference
    frame = snapshot[[f for f in model.features if f in reference and f in snapshot.columns]]
    if probability is not None and SCORE_COLUMN in reference:
        frame = frame.assign(**{SCORE_COLUMN: np.asarray(probability)})
    return bin_counts({k: reference[k] for k in frame.columns}, frame)


def score_partition(
    model: ChurnModel,
    tables: Tables,
    cutoff: pd.Timestamp,
    settings: ScoringSettings,
    *,
    snapshot: pd.DataFrame | None = None,
    uplift: Any = None,
) -> PartitionScores:
    """Score the active customers of one partition of the base at ``cutoff``.

    Parameters
    ----------
    model : ChurnModel
    tables : Tables
        Validated tables of whole customers (the whole base, or a customer bucket).
    cutoff : Timestamp
        Exclusive cutoff.
    settings : ScoringSettings
    snapshot : DataFrame, optional
        The snapshot of ``tables`` at ``cutoff`` (built with the model's feature config) if
        already built.
    uplift : UpliftModel, optional
        Needed by ``settings.target == "uplift"``: the scores gain ``expected_uplift_<a>`` per
        learnt action, and the candidates are the customers some eligible action pays for
        (:func:`~churnlens.serving.uplift_targeting.uplift_candidates`).

    Returns
    -------
    PartitionScores
    """
    from churnlens.features import build_snapshot
    from churnlens.serving.loader import check_compatible

    config = feature_config_of(model)
    if snapshot is None:
        snapshot = build_snapshot(tables, cutoff, config)
    if not snapshot.index.is_monotonic_increasing:
        snapshot = snapshot.sort_index()
    check_compatible(model, snapshot, tables=tables)
    rows = score_rows(model, snapshot, settings)
    proba = rows[SCORE_COLUMN].to_numpy()
    values, value_source = customer_values(tables, snapshot, cutoff, settings.value_column)
    ids = pd.array(snapshot.index, dtype="string")
    scores = pd.DataFrame(
        {
            "customer_id": ids,
            SCORE_COLUMN: proba,
            "risk_band": pd.array(rows["risk_band"].to_numpy(), dtype="string"),
            "customer_value": values,
            "value_at_risk": value_at_risk(proba, values),
        }
    )
    economics = settings.economics
    if settings.target == "uplift":
        scores, candidates = _uplift_partition(model, uplift, scores, snapshot, settings)
    else:
        candidates = scores[select_mask(rule_of(settings), proba, values, economics)]  # ids sorted: ties by id
    rejects = find_rejects(
        tables, cutoff, pd.Index(ids), active_window_days=config.active_window_days, lang=settings.lang
    )
    band = rows["risk_band"].to_numpy()
    counts = PartitionCounts(
        scored=len(scores),
        bands={b: int((band == b).sum()) for b in BANDS},
        rejects={str(k): int(v) for k, v in rejects["reason_code"].value_counts().items()},
        drift=drift_counts(model, snapshot, proba),
        value_source=value_source if len(scores) else None,
    )
    return PartitionScores(snapshot, scores, candidates, rejects, counts)


def check_uplift_model(uplift: Any, model: ChurnModel) -> None:
    """Refuse an uplift run without an uplift model, or with one trained on other feature settings.

    The snapshot is built with the churn model's feature settings, so the uplift model must have
    been trained with the same definitions. Two parts of a trained configuration are not settings
    and are left out of the comparison: the BG/NBD parameters ``train`` records at the data's end
    (the uplift training fits BG/NBD at each of its cutoffs, as the churn training does), and the
    windows (``train`` leaves out those the history cannot show; a window either exists in the
    snapshot with the same definition or is missing, which :func:`check_uplift_features` reports).
    """
    if uplift is None:
        raise InputError(
            "--target uplift needs an uplift model (churnlens train-uplift, then --uplift-model, default "
            "models:/churnlens-uplift@champion)"
        )
    trained = dict(uplift.metadata.feature_config or {})
    if not trained:
        return
    known = set(FeatureConfig.__dataclass_fields__)
    theirs = FeatureConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in trained.items() if k in known})
    if _definitions(theirs) != _definitions(feature_config_of(model)):
        raise InputError(
            "the uplift model was trained with other feature settings than the churn model "
            "([features] of both trainings differ): train both on the same configuration"
        )


def _definitions(config: FeatureConfig) -> dict[str, Any]:
    """What fixes a feature's definition: the settings without the fitted BG/NBD parameters and the windows."""
    return {k: v for k, v in asdict(config).items() if k not in ("btyd_params", "windows")}


def check_uplift_features(uplift: Any, snapshot: pd.DataFrame) -> None:
    """Refuse an uplift model that needs features the churn model's snapshot does not have."""
    missing = [f for f in uplift.features if f not in snapshot.columns]
    if missing:
        raise InputError(
            f"the uplift model uses {len(missing)} feature(s) the churn model's snapshot does not have: "
            f"{missing[:8]}{' ...' if len(missing) > 8 else ''} (the churn model was trained with fewer windows "
            "or tables, e.g. on a shorter history: retrain the uplift model on the same data)"
        )


def _uplift_partition(
    model: ChurnModel, uplift: Any, scores: pd.DataFrame, snapshot: pd.DataFrame, settings: ScoringSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The partition's scores with each learnt action's expected uplift, and its uplift candidates."""
    from churnlens.expressions import parse
    from churnlens.serving.actions import REASON_NAMES
    from churnlens.serving.uplift_targeting import learnt_rules, positive_mask, uplift_candidates, uplift_scores

    check_uplift_model(uplift, model)
    check_uplift_features(uplift, snapshot)
    rules, _ = learnt_rules(settings.actions, uplift)
    scores = pd.concat([scores, uplift_scores(uplift, snapshot, rules)], axis=1)
    positive = positive_mask(scores, rules, settings)
    reasons = None
    if any(parse(r.eligible).names & set(REASON_NAMES) for r in rules):  # rules read the churn reasons
        reasons = explain_rows(model, snapshot.iloc[np.flatnonzero(positive)], settings)
    return scores, uplift_candidates(settings, rules, scores[positive], snapshot, reasons)


def merge_selection(settings: ScoringSettings, candidates: list[pd.DataFrame]) -> pd.DataFrame:
    """The selected rows of the whole base, from every partition's candidates.

    The rule is applied again to the pooled candidates, ties broken by customer id (as a
    single partition sorted by id breaks them), so the result equals one pass over the base.
    Returns the selected rows sorted by customer id.
    """
    pool = [c for c in candidates if len(c)]
    if not pool and settings.target == "uplift":
        pool = candidates[:1]  # an empty selection with the uplift columns
    if not pool:
        return candidates[0].iloc[:0] if candidates else pd.DataFrame(columns=SCORED_COLUMNS)
    frame = pd.concat(pool, ignore_index=True)
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    if settings.target == "uplift":
        from churnlens.serving.uplift_targeting import candidate_rules, select_by_uplift

        chosen = select_by_uplift(candidate_rules(settings.actions, frame), frame, settings.budget)
        chosen.rows.attrs["uplift"] = chosen.counts
        return chosen.rows
    keep = select_mask(
        rule_of(settings), frame[SCORE_COLUMN].to_numpy(dtype="float64"),
        frame["customer_value"].to_numpy(dtype="float64"), settings.economics,
    )  # fmt: skip
    return frame[keep].reset_index(drop=True)


def merge_counts(parts: list[PartitionCounts]) -> PartitionCounts:
    """The counts of the whole base from its partitions' counts."""
    total = PartitionCounts()
    for part in parts:
        total.scored += part.scored
        for band, n in part.bands.items():
            total.bands[band] = total.bands.get(band, 0) + n
        for reason, n in part.rejects.items():
            total.rejects[reason] = total.rejects.get(reason, 0) + n
        total.value_source = total.value_source or part.value_source
    total.drift = add_counts([p.drift for p in parts])
    total.rejects = dict(sorted(total.rejects.items(), key=lambda kv: -kv[1]))
    return total


def drift_table(model: ChurnModel, counts: PartitionCounts, threshold: float) -> pd.DataFrame:
    """PSI of each feature and of the score against training, highest first, flagged above ``threshold``."""
    table = stability_from_counts(model.metadata.reference, counts.drift, counts.scored)
    table["flagged"] = table["psi"] > threshold
    return table[DRIFT_COLUMNS]


# --------------------------------------------------------------------------- campaign list


def rank_order(scores: pd.DataFrame) -> np.ndarray:
    """Positions by churn probability, highest first; ties by customer id."""
    ids = scores["customer_id"].astype("string").to_numpy(dtype=object)
    return np.lexsort((ids, -scores[SCORE_COLUMN].to_numpy(dtype="float64")))


def band_labels(bands: np.ndarray, lang: str) -> np.ndarray:
    """The risk bands' words in ``lang`` (« élevé », "high"), for the lists people read."""
    from churnlens.i18n import Words

    words = {b: Words(lang)("risk-band", band=b) for b in BANDS}
    return np.array([words.get(b, b) for b in np.asarray(bands, dtype=object)], dtype=object)


def campaign_rows(
    scores: pd.DataFrame,
    selected: np.ndarray,
    reasons: pd.DataFrame,
    settings: ScoringSettings,
    *,
    rank: np.ndarray | None = None,
) -> pd.DataFrame:
    """Campaign-list rows of scored customers: :data:`CAMPAIGN_COLUMNS` then ``reason_1..n``.

    ``risk_band`` is the band's code (stable), ``risk_band_label`` its word in the settings'
    language. ``rank`` defaults to zeros (a partitioned run numbers rows after a global sort).
    """
    ids = pd.Index(scores["customer_id"].astype("string"), name="customer_id")
    out = scores.reset_index(drop=True).assign(
        rank=np.zeros(len(scores), dtype="int64") if rank is None else np.asarray(rank, dtype="int64"),
        selected=np.asarray(selected, dtype=bool),
        risk_band_label=pd.array(band_labels(scores["risk_band"].to_numpy(dtype=object), settings.lang),
                                 dtype="string"),
    )[CAMPAIGN_COLUMNS]  # fmt: skip
    extra = [c for c in scores.columns if c.startswith("expected_uplift_") or c == "expected_incremental_value"]
    for column in extra:
        out.insert(len(out.columns), column, scores[column].to_numpy())
    n_reasons = settings.reasons
    wide = reasons_wide(reasons, n_reasons).reindex(ids)
    for column in wide.columns:
        out[column] = wide[column].to_numpy()
    return out


# --------------------------------------------------------------------------- actions and contact plans


@dataclass
class CampaignActions:
    """The actions of the selected customers and, with a campaign id, the contact plan.

    Attributes
    ----------
    rows : DataFrame
        customer_id then :data:`~churnlens.serving.actions.ACTION_COLUMNS` (and ``group``
        with a plan), one row per selected customer, sorted by customer id.
    plan : ContactPlan or None
    counts : dict
        What :class:`~churnlens.serving.actions.Assignment` counts.
    """

    rows: pd.DataFrame
    plan: ContactPlan | None
    counts: dict[str, Any]

    @property
    def columns(self) -> list[str]:
        """The columns these actions add to the campaign list."""
        return [c for c in self.rows.columns if c != "customer_id"]


def wants_actions(settings: ScoringSettings) -> bool:
    """Whether the run assigns actions or draws a contact plan."""
    return bool(settings.assign_actions or settings.campaign_id or settings.target == "uplift")


def action_inputs(
    settings: ScoringSettings,
    scores: pd.DataFrame,
    snapshot: pd.DataFrame,
    reasons: pd.DataFrame,
    selected: np.ndarray,
) -> RuleInputs | None:
    """A partition's part of the actions: the rules' verdicts on its selected rows (None: not asked).

    Row-wise, so partitions can compute it apart; :func:`plan_actions` pools them.
    """
    if not wants_actions(settings) or settings.target == "uplift":
        return None
    rules = settings.actions if settings.assign_actions else ()
    return rule_inputs(rules, scores[np.asarray(selected, dtype=bool)], snapshot, reasons)


def send_date_of(settings: ScoringSettings, cutoff: pd.Timestamp) -> pd.Timestamp:
    """The contact plan's send date: ``settings.send_date``, else the cutoff; never before the cutoff."""
    if settings.send_date is None:
        return pd.Timestamp(cutoff)
    send = pd.Timestamp(settings.send_date)
    if send < pd.Timestamp(cutoff).floor("D"):
        raise InputError(
            f"--send-date {send.date()} is before the cutoff {pd.Timestamp(cutoff).date()}: the list was scored "
            "with data the campaign could not have seen; send on or after the cutoff"
        )
    return send


def plan_actions(
    settings: ScoringSettings,
    inputs: list[RuleInputs | None],
    *,
    cutoff: pd.Timestamp,
    selected: pd.DataFrame | None = None,
) -> CampaignActions | None:
    """Actions of the whole selection (capacities are global) and its contact plan.

    The one step both scoring paths run on the pooled :func:`action_inputs` of every partition,
    so batch and Dask give the same actions and the same control group. With ``--target
    uplift`` the actions were chosen with the customers (:func:`merge_selection`'s
    ``selected`` rows carry them).
    """
    if not wants_actions(settings):
        return None
    pooled = pool_inputs([i for i in inputs if i is not None])
    if not len(pooled.frame.columns):
        pooled = rule_inputs((), pd.DataFrame(columns=SCORED_COLUMNS), pd.DataFrame(), None)
    if settings.target == "uplift":
        from churnlens.serving.uplift_targeting import uplift_assignment

        assignment = uplift_assignment(selected, settings.actions, lang=settings.lang, currency=settings.currency)
    elif settings.assign_actions:
        assignment = assign_actions(settings.actions, pooled, lang=settings.lang)
    else:
        assignment = generic_assignment(pooled, lang=settings.lang)
    rows = assignment.rows[["customer_id", *ACTION_COLUMNS]].copy()
    plan = None
    if settings.campaign_id:
        plan = contact_plan(
            assignment.rows, settings.actions, campaign_id=settings.campaign_id,
            send_date=send_date_of(settings, cutoff), share=settings.holdout, seed=settings.holdout_seed,
            generic_cost=settings.cost_per_contact,
        )  # fmt: skip
        group = pd.Series(plan.contacts["group"].to_numpy(), index=plan.contacts["customer_id"].to_numpy())
        rows["group"] = pd.array(group.reindex(rows["customer_id"].to_numpy()).to_numpy(), dtype="string")
    # value at risk the actions address (treated customers only when a control group is held out)
    reached = assignment.rows["action"].notna().to_numpy(copy=True)
    if "group" in rows.columns:
        reached &= (rows["group"] == "treatment").to_numpy(dtype=bool, na_value=False)
    value_at_risk = assignment.rows.loc[reached].groupby(assignment.rows.loc[reached, "action"].astype(str))[
        "value_at_risk"
    ].sum()
    counts = {**assignment.counts, "value_at_risk": {str(k): float(v) for k, v in value_at_risk.items()}}
    return CampaignActions(rows, plan, counts)


def with_actions(campaign: pd.DataFrame, actions: CampaignActions | None) -> pd.DataFrame:
    """Campaign rows with the action columns inserted after ``selected`` (NA for customers without one)."""
    if actions is None:
        return campaign
    extra = actions.rows.set_index(actions.rows["customer_id"].astype("string"))
    ids = campaign["customer_id"].astype("string").to_numpy()
    at = list(campaign.columns).index("selected") + 1
    out = campaign.copy()
    for offset, column in enumerate(actions.columns):
        values = pd.array(extra[column].reindex(ids).to_numpy(), dtype="string")
        out.insert(at + offset, column, values)
    return out


def model_record(model: Any) -> dict[str, Any] | None:
    """What identifies the model that scored a campaign (a LoadedModel or a ChurnModel)."""
    if model is None:
        return None
    churn_model = getattr(model, "model", model)
    meta = churn_model.metadata
    return {
        "name": getattr(model, "name", None) or meta.model_name,
        "version": getattr(model, "version", None),
        "uri": getattr(model, "uri", None),
        "resolved_uri": getattr(model, "resolved_uri", None),
        "run_id": getattr(model, "run_id", None),
        "horizon_days": meta.horizon_days,
        "label_mode": meta.label_mode,
    }


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run did, for the CLI summary and ``<stem>.summary.json``."""

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
    #: Where the scored tables came from (a data directory), for the web app's cards.
    data_source: str | None = None
    #: The model URI actually loaded (``models:/name/3``), so the web app can serve the same one.
    model_uri: str | None = None
    horizon_days: int | None = None
    trained_through: str | None = None
    currency: str = "EUR"
    #: The targeting rule as settings (``top``, ``threshold``, ``budget``; all None = high band).
    targeting: dict[str, float | int | None] = field(default_factory=dict)
    #: concepts that raised a customer's risk but were not reasons (on the safe side of the median)
    reasons_hidden: int = 0
    #: with --actions or a campaign id: customers per action, blocked ones, notes
    actions: dict[str, Any] | None = None
    #: with a campaign id: the contact plan (groups, strata) and the model that scored it
    plan: dict[str, Any] | None = None
    #: with save_rate = "measured": the rate used, its interval and the report it came from
    save_rate: dict[str, Any] | None = None
    #: ``risk`` or ``uplift`` (``score --target``)
    target: str = "risk"
    #: with --target uplift: the uplift model, and the uplift list against the risk list at the same budget
    uplift: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["campaign"] = self.campaign.to_dict()
        out["band_bounds"] = list(self.band_bounds)
        return out


def _uplift_rule(settings: ScoringSettings) -> str:
    from churnlens.i18n import Words

    words = Words(settings.lang, settings.currency)
    if settings.budget is None:
        return words("uplift-target-value")
    return words("uplift-target-budget", amount=words.money(settings.budget))


def build_summary(
    *,
    cutoff: pd.Timestamp,
    model_name: str,
    model_version: str | None,
    settings: ScoringSettings,
    counts: PartitionCounts,
    selected: pd.DataFrame,
    drift: pd.DataFrame,
    seconds: dict[str, float] | None = None,
    model: Any = None,
    model_uri: str | None = None,
    data_source: str | None = None,
    actions: CampaignActions | None = None,
    reasons_hidden: int = 0,
    uplift: dict[str, Any] | None = None,
) -> ScoreSummary:
    """The run's summary from the merged counts and the selected rows.

    ``model`` (the LoadedModel or ChurnModel that scored: its horizon and "trained through"),
    ``model_uri`` and ``data_source`` are recorded for the web app when given; ``actions``
    (from :func:`plan_actions`) adds the actions and the contact plan, with what
    ``campaign-report`` needs to find the model again.
    """
    economics = settings.economics
    p = selected[SCORE_COLUMN].to_numpy(dtype="float64")
    value = economics.values(selected["customer_value"].to_numpy(dtype="float64"))
    campaign = summarize(
        p, np.ones(len(selected), dtype=bool),
        cost_per_contact=economics.cost_per_contact, save_rate=economics.save_rate, value=value,
    )  # fmt: skip
    if settings.target == "uplift" and "action_cost" in selected.columns:  # each action's cost, its uplift's value
        cost = float(selected["action_cost"].sum())
        net = float(selected["expected_incremental_value"].sum())
        campaign = CampaignSummary(len(selected), cost, net + cost, net)
    save_rate = None
    if settings.measured_save_rate is not None and settings.save_rate == MEASURED:
        save_rate = dict(settings.measured_save_rate)
        for end in ("low", "high"):
            rate = min(max(float(save_rate[end]), 0.0), 1.0) if save_rate.get(end) is not None else None
            save_rate[f"expected_saved_value_{end}"] = None if rate is None else float(np.sum(p * rate * value))
        if actions is not None:  # each action's own measured rate on the value at risk it reaches
            measured = save_rate.get("per_action") or {}
            save_rate["expected_saved_value_by_action"] = {
                a: min(max(float(measured[a]["value"]), 0.0), 1.0) * var
                for a, var in actions.counts.get("value_at_risk", {}).items()
                if a in measured
            }
    value_source = counts.value_source or ("spend_365d" if settings.value_column is None else settings.value_column)
    return ScoreSummary(
        cutoff=str(cutoff.date()),
        model_name=model_name,
        model_version=model_version,
        scored=counts.scored,
        rejected=int(sum(counts.rejects.values())),
        selected=len(selected),
        rule=describe(rule_of(settings), economics) if settings.target == "risk" else _uplift_rule(settings),
        campaign=campaign,
        bands={b: int(counts.bands.get(b, 0)) for b in BANDS},
        band_bounds=settings.bands,
        explained=counts.scored if settings.explain_all else len(selected),
        lang=settings.lang,
        n_reasons=settings.reasons,
        value_source=value_source if economics.value_per_save is None else f"{economics.value_per_save:g} per save",
        psi_threshold=float(settings.psi_threshold),
        drift_flagged=drift.loc[drift["flagged"], "feature"].tolist(),
        rejects_by_reason=dict(counts.rejects),
        reasons_hidden=int(reasons_hidden),
        seconds=dict(seconds or {}),
        data_source=data_source,
        model_uri=model_uri,
        horizon_days=None if model is None else model.metadata.horizon_days,
        trained_through=None if model is None else model.metadata.trained_through,
        currency=settings.currency,
        targeting={"top": settings.top, "threshold": settings.threshold, "budget": settings.budget},
        actions=None if actions is None else dict(actions.counts),
        plan=None if actions is None or actions.plan is None else {
            **actions.plan.summary, "cutoff": str(cutoff.date()), "model": model_record(model),
            "rules": [asdict(r) for r in settings.actions] if settings.assign_actions else [],
        },
        save_rate=save_rate,
        target=settings.target,
        uplift=uplift,
    )


# --------------------------------------------------------------------------- uplift campaigns
# (``--target uplift``: what follows the selection; each piece works on a partition or on
# small per-partition pieces, so batch and Dask call the same functions)


def with_chosen_values(scores: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with the chosen action's expected incremental value
    (:data:`~churnlens.serving.uplift_targeting.VALUE_COLUMN`; NaN for customers not selected).

    ``selected`` holds customer_id and that column (it may hold customers of other partitions).
    """
    from churnlens.serving.uplift_targeting import VALUE_COLUMN

    chosen = selected.set_index(selected["customer_id"].astype("string"))[VALUE_COLUMN]
    values = chosen.reindex(scores["customer_id"].astype("string")).to_numpy(dtype="float64")
    return scores.assign(**{VALUE_COLUMN: values})


def with_uplift_reasons(
    campaign: pd.DataFrame, uplift: Any, snapshot: pd.DataFrame, selected: pd.DataFrame, settings: ScoringSettings
) -> pd.DataFrame:
    """Campaign rows with ``uplift_reason_1..n``: why the chosen action of each selected customer
    (rows of ``selected`` among the campaign's customers) is expected to work; NA for the others.

    Row-wise (exact SHAP of each customer's own action), so partitions compute it apart.
    ``snapshot`` (index customer_id) holds at least the campaign's selected customers.
    """
    from churnlens.serving.uplift_reasons import UPLIFT_REASON_COLUMNS, uplift_reasons, uplift_reasons_wide

    here = pd.Index(campaign["customer_id"].astype("string"))
    ids = pd.Index(selected["customer_id"].astype("string"))
    mine = ids.isin(here)
    if mine.any():
        snap = snapshot.set_axis(pd.Index(snapshot.index.astype("string"), name="customer_id"))
        why = uplift_reasons(
            uplift, snap.reindex(ids[mine]), selected["action"].astype(str).to_numpy()[mine], n=settings.reasons,
            lang=settings.lang, labels=settings.labels.get(settings.lang), currency=settings.currency,
        )  # fmt: skip
    else:
        why = pd.DataFrame(columns=UPLIFT_REASON_COLUMNS)
    wide = uplift_reasons_wide(why, settings.reasons).reindex(here)
    out = campaign.copy()
    for column in wide.columns:
        out[column] = wide[column].to_numpy()
    return out


def uplift_budget(settings: ScoringSettings, selected: pd.DataFrame) -> float:
    """The budget both lists are compared at: ``--budget``, else what the uplift list costs."""
    counts = selected.attrs.get("uplift") or {}
    return float(settings.budget) if settings.budget is not None else float(counts.get("cost", 0.0))


def riskiest_rows(
    model: ChurnModel,
    rules: Any,
    scores: pd.DataFrame,
    snapshot: pd.DataFrame,
    budget: float,
    settings: ScoringSettings,
    known: KnownReasons | None = None,
) -> tuple[pd.DataFrame, RuleInputs]:
    """A partition's part of the risk list at ``budget``: its riskiest rows with a fitting rule, at
    most the bound (:func:`~churnlens.serving.uplift_targeting.riskiest_for_budget`), and the
    rules' verdicts on them.

    Whether a rule fits may depend on the churn reasons, so rows are explained as they are
    taken: the partition's rows by risk (probability, then customer id) in growing chunks (the
    bound, then twice as many each time) until the taken ones hold the bound's number of
    fitting rows or the partition is exhausted; only the rows taken are explained (an action
    of cost 0: no bound, the whole partition), and only when a rule reads the reasons; a row
    the campaign has explained already (``known``) is not explained again. The
    filter, the bound and the order are the same in every partition, so the riskiest fitting
    rows of the whole base are among the pooled ones: :func:`risk_list_at_budget` takes them
    again from the pool, as one pass over the base would.

    Parameters
    ----------
    model : ChurnModel
        Explains these rows (the rules may read their churn reasons).
    rules : sequence of ActionRule
        The rules the uplift model learnt, by priority.
    scores : DataFrame
        The partition's scored rows with their ``expected_uplift_<a>`` columns.
    snapshot : DataFrame
        The partition's snapshot (index customer_id).
    budget : float
    settings : ScoringSettings
    known : KnownReasons, optional
        Customers already explained with ``settings`` and their reasons.

    Returns
    -------
    tuple of DataFrame and RuleInputs
        The rows (riskiest first) and their verdicts.
    """
    from churnlens.serving.uplift_targeting import risk_bound, risk_order, riskiest_for_budget

    order = risk_order(scores)
    bound = risk_bound(rules, budget)
    want = len(order) if bound is None else bound
    snap = snapshot.set_axis(pd.Index(snapshot.index.astype("string"), name="customer_id"))
    rows: list[pd.DataFrame] = []
    verdicts: list[RuleInputs] = []
    wanted = rules_read_reasons(rules)
    taken, chunk = 0, max(want, 1)
    while True:  # bounded: each pass takes at least one more row of the partition
        piece = scores.iloc[order[taken : taken + chunk]].reset_index(drop=True)
        ids = pd.Index(piece["customer_id"].astype("string"))
        reasons = _reasons_of(model, snap, ids, settings, known) if wanted else None
        rows.append(piece)
        verdicts.append(rule_inputs(rules, piece, snapshot, reasons))
        taken += len(piece)
        pool = pd.concat(rows, ignore_index=True)
        pooled = pool_inputs(verdicts)
        kept = riskiest_for_budget(pool, pooled, rules, budget)
        if len(kept) >= want or taken >= len(order):
            break
        chunk *= 2
    riskiest = pool.iloc[kept].reset_index(drop=True)
    return riskiest, _inputs_of(pooled, riskiest)


def _reasons_of(
    model: ChurnModel, snapshot: pd.DataFrame, ids: pd.Index, settings: ScoringSettings, known: KnownReasons | None
) -> pd.DataFrame:
    """The reasons of customers ``ids``: the known ones as they are, the others explained."""
    if known is None or not len(known.customers):
        return explain_rows(model, snapshot.reindex(ids), settings)
    have = ids.isin(known.customers.astype("string"))
    fresh = explain_rows(model, snapshot.reindex(ids[~have]), settings)
    mine = known.reasons["customer_id"].astype("string").isin(ids[have]).to_numpy(dtype=bool)
    return pd.concat([known.reasons[mine], fresh], ignore_index=True)


def _inputs_of(inputs: RuleInputs, rows: pd.DataFrame) -> RuleInputs:
    """``inputs`` restricted to the customers of ``rows``."""
    if not len(inputs.frame):
        return inputs
    keep = inputs.frame["customer_id"].astype("string").isin(rows["customer_id"].astype("string"))
    return RuleInputs(inputs.frame[keep.to_numpy(dtype=bool)].reset_index(drop=True), inputs.absent)


def risk_list_at_budget(
    rules: Any, parts: list[tuple[pd.DataFrame, RuleInputs]], budget: float, settings: ScoringSettings
) -> Any:
    """The list churn-risk targeting sends for ``budget`` and its expected incremental value
    (:func:`~churnlens.serving.uplift_targeting.risk_list`), from every partition's
    :func:`riskiest_rows`: the pooled rows' riskiest fitting ones, at most the bound
    (:func:`~churnlens.serving.uplift_targeting.riskiest_for_budget`, as in each partition).

    Returns
    -------
    ListValue
    """
    from churnlens.serving.uplift_targeting import risk_list, riskiest_for_budget

    frames = [rows for rows, _ in parts if len(rows)]
    pool = pd.concat(frames, ignore_index=True) if frames else parts[0][0]
    pooled = pool_inputs([inputs for _, inputs in parts])
    riskiest = pool.iloc[riskiest_for_budget(pool, pooled, rules, budget)].reset_index(drop=True)
    return risk_list(rules, riskiest, _inputs_of(pooled, riskiest), budget, settings)


def uplift_record(
    uplift: Any, loaded: Any, selected: pd.DataFrame, risk: Any, budget: float, notes: list[str]
) -> dict[str, Any]:
    """The summary's ``uplift`` block: the uplift model, and the uplift list against the risk list
    (``risk``, from :func:`risk_list_at_budget`) at the same budget.

    ``loaded`` is the LoadedUpliftModel it came from (its name, version and URI), or None.
    """
    counts = dict(selected.attrs.get("uplift") or {})
    ours = float(counts.get("value", 0.0))
    meta = uplift.metadata
    return {
        "model": {
            "name": getattr(loaded, "name", None) or meta.model_name,
            "version": getattr(loaded, "version", None), "uri": getattr(loaded, "resolved_uri", None),
            "learner": meta.learner, "actions": list(meta.actions), "trained_through": meta.trained_through,
        },
        "budget": budget,
        "uplift_list": {"contacted": len(selected), "cost": float(counts.get("cost", 0.0)),
                        "expected_incremental_value": ours},
        "risk_list": risk.to_dict(),
        "ratio": ours / risk.expected_incremental_value if risk.expected_incremental_value > 0 else None,
        "over_budget": int(counts.get("over_budget", 0)),
        "notes": notes,
        "reasons": "exact SHAP of the uplift model (TreeSHAP on its weighted sum of LightGBM regressors)",
    }  # fmt: skip
