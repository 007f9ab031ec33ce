"""What a sent campaign did: churn of treated vs control customers per action, and the model's realised quality.

A campaign is the ``contacts`` rows with its ``campaign_id`` (treatment and control). Once the
horizon after its send date has passed in the data, :func:`campaign_report` measures for each
action and overall the churn rates treated vs control, the absolute and relative uplift with
95 % intervals, the incremental saved value and the ROI against the contacts' cost
(:mod:`churnlens.serving.effects`). Given the scored list the campaign was drawn from
(``churnlens score ... --campaign-id``), it also measures how well the model predicted churn
on the customers the campaign did not treat (their outcome is the one the model predicts),
and names the model that scored the list.

Churn is the label of the scoring model (recorded in the list's summary), else of ``[labels]``:
no purchase in ``[send, send + H)`` (non-contractual) or a cancellation in it (contractual).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ChurnConfig
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features import build_labels, label_mode, observed_until
from churnlens.serving.effects import LEVEL, Arm, Effect, arm_effect, overall_effect
from churnlens.serving.holdout import TREATMENT
from churnlens.serving.output import sibling

#: Deciles of the calibration table.
CALIBRATION_BINS = 10
#: Campaign ids listed when the one asked for does not exist.
_SHOWN = 20


class CampaignNotMatureError(InputError):
    """The campaign's outcome window has not passed in the data yet.

    Attributes
    ----------
    ready_on : Timestamp
        The day the data must reach (send date + horizon).
    """

    def __init__(self, message: str, ready_on: pd.Timestamp) -> None:
        super().__init__(message)
        self.ready_on = ready_on


@dataclass(frozen=True)
class Note:
    """A sentence of the report, as a message id of ``locales/<lang>/report.ftl`` and its arguments."""

    id: str
    args: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        """The sentence in ``lang``."""
        from churnlens.i18n import Words

        return Words(lang)(self.id, **self.args)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "args": dict(self.args), "text": self.text("en")}


@dataclass(frozen=True)
class ScoredList:
    """The campaign list a campaign was drawn from and its summary (``churnlens score`` outputs).

    Attributes
    ----------
    path : Path
        The list: a CSV/Parquet file, or a Dask output directory.
    scores : DataFrame
        customer_id, churn_probability, customer_value, selected (and action, group when planned).
    summary : dict
        ``<stem>.summary.json``: cutoff, model, plan.
    """

    path: Path
    scores: pd.DataFrame
    summary: dict[str, Any]

    @property
    def plan(self) -> dict[str, Any]:
        """The contact plan recorded by ``score`` (empty when the list had no campaign id)."""
        return dict(self.summary.get("plan") or {})

    @property
    def model(self) -> dict[str, Any]:
        """The model that scored the list: name, version, URI, run id, horizon, label mode."""
        recorded = self.plan.get("model") or {}
        return {"name": self.summary.get("model_name"), "version": self.summary.get("model_version"), **recorded}

    @property
    def cutoff(self) -> pd.Timestamp:
        return pd.Timestamp(self.summary["cutoff"])


def read_scored_list(path: str | Path) -> ScoredList:
    """Read a campaign list written by ``churnlens score`` and its summary.

    Parameters
    ----------
    path : str or Path
        ``campaign.csv`` / ``campaign.parquet`` (summary ``campaign.summary.json`` beside it),
        or a ``--engine dask`` output directory.

    Returns
    -------
    ScoredList
    """
    path = Path(path)
    if path.is_dir():
        from churnlens.engine.dask_scoring import read_campaign

        summary_path = path / "summary.json"
        scores = read_campaign(path) if summary_path.is_file() else None
    else:
        if not path.is_file():
            raise InputError(f"scored list {path} does not exist")
        summary_path = sibling(path, "summary", ".json")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            scores = pd.read_csv(path, dtype={"customer_id": "string"})
        elif suffix in (".parquet", ".pq"):
            scores = pd.read_parquet(path)
        else:
            raise InputError(f"scored list {path} must be a .csv or .parquet file written by churnlens score")
    if scores is None or not summary_path.is_file():
        raise InputError(
            f"{path} has no summary {summary_path.name} beside it: is it a list written by churnlens score?"
        )
    needed = {"customer_id", "churn_probability", "customer_value", "selected"}
    missing = sorted(needed - set(scores.columns))
    if missing:
        raise InputError(f"scored list {path} lacks the columns {missing} of a churnlens campaign list")
    scores["customer_id"] = scores["customer_id"].astype("string")
    return ScoredList(path, scores, json.loads(summary_path.read_text()))


@dataclass(frozen=True)
class Quality:
    """The model's realised quality on the scored customers the campaign did not treat.

    ``auc_control`` is the ROC AUC on the campaign's control group alone (selected and
    held out at random); ``calibration`` has one row per decile of predicted probability:
    customers, mean predicted, observed churn rate.
    """

    population: str
    customers: int
    churn_rate: float
    mean_predicted: float
    roc_auc: float
    control_customers: int
    auc_control: float
    calibration: list[dict[str, float | int]]
    cutoff: str
    horizon_days: int
    label_mode: str

    def to_dict(self) -> dict[str, Any]:
        return {k: _json(v) for k, v in self.__dict__.items()}


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return _json(value.item())
    return value


@dataclass
class CampaignReport:
    """The measured outcome of one campaign (see the module docstring).

    Attributes
    ----------
    campaign_id, send_date, outcome_end, data_end : str
        Dates as YYYY-MM-DD; ``outcome_end`` = send date + horizon (exclusive).
    horizon_days : int
    label_mode : str
    effects : list of Effect
        One per action (by name), then ``overall``.
    quality : Quality or None
        None without the scored list.
    model : dict or None
        The model that scored the list (name, version, uri, run id).
    value_source, cost_source : Note
        Where customer values and costs came from.
    notes : list of Note
        Everything the reader should know (actions left out, missing costs ...).
    """

    campaign_id: str
    send_date: str
    outcome_end: str
    data_end: str
    horizon_days: int
    label_mode: str
    effects: list[Effect]
    quality: Quality | None = None
    model: dict[str, Any] | None = None
    value_source: Note = Note("value-spend")
    cost_source: Note = Note("cost-unknown")
    level: float = LEVEL
    notes: list[Note] = field(default_factory=list)

    @property
    def overall(self) -> Effect:
        return next(e for e in self.effects if e.action == "overall")

    def effect(self, action: str) -> Effect:
        """The effect of ``action`` (or ``"overall"``)."""
        for e in self.effects:
            if e.action == action:
                return e
        raise KeyError(f"campaign {self.campaign_id} has no action {action!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "campaign_id": self.campaign_id,
            "send_date": self.send_date,
            "outcome_end": self.outcome_end,
            "data_end": self.data_end,
            "horizon_days": self.horizon_days,
            "label_mode": self.label_mode,
            "level": self.level,
            "effects": [e.to_dict() for e in self.effects],
            "quality": None if self.quality is None else self.quality.to_dict(),
            "model": _json(self.model),
            "value_source": self.value_source.to_dict(),
            "cost_source": self.cost_source.to_dict(),
            "notes": [n.to_dict() for n in self.notes],
        }


# --------------------------------------------------------------------------- the campaign's rows


def campaign_contacts(tables: Tables, campaign_id: str) -> pd.DataFrame:
    """The ``contacts`` rows of one campaign, one per customer.

    Raises
    ------
    InputError
        No contacts table, or no row with this campaign id (the message lists the known ids).
    """
    contacts = tables.contacts
    if contacts is None:
        raise InputError("the data has no contacts table: append the campaign's contact plan to contacts first")
    ids = contacts["campaign_id"].astype("string")
    rows = contacts[(ids == campaign_id).to_numpy(dtype=bool, na_value=False)]
    if rows.empty:
        known = sorted(ids.dropna().unique().tolist())
        shown = ", ".join(known[:_SHOWN]) + (" ..." if len(known) > _SHOWN else "")
        raise InputError(f"no contacts of campaign {campaign_id!r}; campaigns in the data: {shown or 'none'}")
    rows = rows.sort_values(["customer_id", "timestamp"], kind="stable")
    # a customer contacted twice by the campaign (a resend) counts once, at the first contact
    return rows.drop_duplicates("customer_id", keep="first").reset_index(drop=True)


def outcome_end_of_data(tables: Tables) -> pd.Timestamp:
    """Midnight after the last observed event, contact plans aside (a plan is not an observation)."""
    return observed_until(tables.replace(contacts=None))


def check_mature(campaign_id: str, send: pd.Timestamp, horizon_days: int, tables: Tables) -> pd.Timestamp:
    """The end of the outcome window ``send + horizon`` (exclusive), or a :class:`CampaignNotMatureError`
    saying when the report will be possible."""
    ready = pd.Timestamp(send) + pd.Timedelta(days=int(horizon_days))
    until = outcome_end_of_data(tables)
    if ready > until:
        last_day = (ready - pd.Timedelta(microseconds=1)).date()
        more = int(np.ceil((ready - until) / pd.Timedelta(days=1)))
        raise CampaignNotMatureError(
            f"campaign {campaign_id} was sent on {pd.Timestamp(send).date()}: its {horizon_days}-day outcome runs to "
            f"{last_day}, but the data ends on {pd.Timestamp(tables.replace(contacts=None).data_end).date()}. "
            f"The report will be possible once the data covers {last_day} ({more} more day(s) of data).",
            ready,
        )
    return ready


# --------------------------------------------------------------------------- the report


def _costs(
    rows: pd.DataFrame, treated: np.ndarray, rules: dict[str, float]
) -> tuple[dict[str, float], Note, list[Note]]:
    """Cost of each action's treated contacts: the contacts' cost column, else the rules' costs."""
    costs: dict[str, float] = {}
    notes: list[Note] = []
    sources: set[str] = set()
    has_column = "cost" in rows.columns
    for action, group in rows.groupby(rows["action"].astype("string"), sort=True):
        mine = treated[group.index.to_numpy()]
        paid = group["cost"].to_numpy(dtype="float64", na_value=np.nan)[mine] if has_column else np.zeros(0)
        if has_column and not np.isnan(paid).any():
            costs[str(action)] = float(paid.sum())
            sources.add("contacts")
        elif str(action) in rules:
            costs[str(action)] = float(rules[str(action)]) * int(mine.sum())
            sources.add("rules")
        else:
            costs[str(action)] = math.nan
            notes.append(Note("note-no-cost", {"action": str(action)}))
    source = {frozenset({"contacts"}): "cost-contacts", frozenset({"rules"}): "cost-rules",
              frozenset({"contacts", "rules"}): "cost-mixed"}.get(frozenset(sources), "cost-unknown")  # fmt: skip
    return costs, Note(source), notes


def campaign_report(
    tables: Tables,
    campaign_id: str,
    *,
    horizon_days: int | None = None,
    mode: str | None = None,
    scored: ScoredList | None = None,
    config: ChurnConfig | None = None,
) -> CampaignReport:
    """Measure a sent campaign once its horizon has passed.

    Parameters
    ----------
    tables : Tables
        Validated tables holding the campaign's ``contacts`` rows and the outcomes after it.
    campaign_id : str
    horizon_days : int, optional
        Outcome window after the send date; default the scoring model's horizon (from
        ``scored``), else ``config.labels.horizon_days``.
    mode : {"auto", "non_contractual", "contractual"}, optional
        What churn means; default the scoring model's label mode, else ``config.labels.mode``.
    scored : ScoredList, optional
        The list the campaign was drawn from: adds the model's realised quality, the
        customers' values as scored, and the model's identity.
    config : ChurnConfig, optional
        ``[labels]`` defaults and the ``[[actions]]`` costs for contacts without a cost.

    Returns
    -------
    CampaignReport

    Raises
    ------
    CampaignNotMatureError
        Before send date + horizon has passed in the data.
    InputError
        No such campaign, or no contacts table.
    """
    from churnlens.serving.core import trailing_spend

    config = config or ChurnConfig()
    rows = campaign_contacts(tables, campaign_id)
    model = scored.model if scored is not None else None
    horizon = int(horizon_days or (model or {}).get("horizon_days") or config.labels.horizon_days)
    if horizon <= 0:
        raise InputError(f"--horizon must be a positive number of days, got {horizon}")
    mode = label_mode(tables, mode or (model or {}).get("label_mode") or config.labels.mode)
    sends = rows["timestamp"]
    send = pd.Timestamp(sends.min())
    ready = max(check_mature(campaign_id, pd.Timestamp(t), horizon, tables) for t in sends.unique())
    notes: list[Note] = []
    if sends.nunique() > 1:
        notes.append(Note("note-several-sends", {"count": int(sends.nunique()), "first": str(send),
                                                 "last": str(pd.Timestamp(sends.max()))}))  # fmt: skip
    churned = np.zeros(len(rows), dtype="float64")
    for when, group in rows.groupby("timestamp", sort=True):
        ids = pd.Index(group["customer_id"].astype("string"))
        churned[group.index.to_numpy()] = build_labels(tables, when, ids, horizon_days=horizon, mode=mode).to_numpy()
    group_names = rows["group"].astype("string").str.lower()
    treated = (group_names == TREATMENT).to_numpy(dtype=bool, na_value=False)

    ids = pd.Index(rows["customer_id"].astype("string"))
    if scored is not None and scored.scores["customer_id"].isin(ids).any():
        by_id = scored.scores.set_index("customer_id")["customer_value"]
        value = by_id[~by_id.index.duplicated()].reindex(ids).to_numpy(dtype="float64", na_value=np.nan)
        value_source = Note("value-scored-list", {"file": scored.path.name})
    else:
        value = trailing_spend(tables, send, ids)
        value_source = Note("value-spend")

    plan_rules = {r["name"]: float(r["cost"]) for r in (scored.plan.get("rules") or [])} if scored else {}
    config_rules = {r.name: r.cost for r in config.serving.actions}
    rules = {**config_rules, **plan_rules}
    costs, cost_source, cost_notes = _costs(rows, treated, rules)
    notes += cost_notes

    arms = []
    for action in sorted(rows["action"].astype("string").unique()):
        mine = (rows["action"].astype("string") == action).to_numpy(dtype=bool)
        arms.append(Arm.of(str(action), churned[mine], value[mine], treated[mine], costs.get(str(action), math.nan)))
    effects = [arm_effect(arm) for arm in arms]
    for effect in effects:
        if not effect.measured:
            notes.append(Note("note-not-measured", {"action": effect.action, "treated": effect.treated,
                                                    "control": effect.control}))  # fmt: skip
    effects.append(overall_effect(arms))

    quality = None
    if scored is not None:
        quality = model_quality(tables, scored, rows, treated, horizon=horizon, mode=mode)
        if scored.plan.get("campaign_id") not in (None, campaign_id):
            notes.append(Note("note-other-plan", {"file": scored.path.name, "planned": str(scored.plan["campaign_id"]),
                                                  "campaign": campaign_id}))  # fmt: skip
    return CampaignReport(
        campaign_id=campaign_id,
        send_date=str(send.date()),
        outcome_end=str((ready - pd.Timedelta(microseconds=1)).date()),
        data_end=str(pd.Timestamp(tables.replace(contacts=None).data_end).date()),
        horizon_days=horizon,
        label_mode=mode,
        effects=effects,
        quality=quality,
        model=model,
        value_source=value_source,
        cost_source=cost_source,
        notes=notes,
    )


def calibration_table(
    predicted: np.ndarray, observed: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Predicted vs observed churn per decile of predicted probability (decile 1 = lowest risk).

    Customers are split into ``bins`` groups of (nearly) equal size after sorting by the
    prediction, so ties never leave a decile empty.
    """
    order = np.argsort(np.asarray(predicted, dtype="float64"), kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, min(bins, max(len(order), 1))), start=1):
        if part.size == 0:
            continue
        p = predicted[part]
        rows.append({
            "decile": k, "customers": int(part.size), "min_predicted": float(p.min()), "max_predicted": float(p.max()),
            "mean_predicted": float(p.mean()), "observed": float(np.mean(observed[part])),
        })  # fmt: skip
    return rows


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return math.nan
    return float(roc_auc_score(y, p))


def model_quality(
    tables: Tables,
    scored: ScoredList,
    rows: pd.DataFrame,
    treated: np.ndarray,
    *,
    horizon: int,
    mode: str,
) -> Quality:
    """ROC AUC and calibration of the list's probabilities on the customers the campaign left untreated.

    The model predicts churn without an action; treated customers' outcomes were changed by
    it, so they are left out. The label window starts at the list's cutoff.
    """
    cutoff = scored.cutoff
    model_horizon = int((scored.model or {}).get("horizon_days") or horizon)
    check_mature(f"{rows['campaign_id'].iloc[0]} (the model's prediction)", cutoff, model_horizon, tables)
    scores = scored.scores.drop_duplicates("customer_id")
    treated_ids = pd.Index(rows.loc[treated, "customer_id"].astype("string"))
    control_ids = pd.Index(rows.loc[~treated, "customer_id"].astype("string"))
    untreated = scores[~scores["customer_id"].isin(treated_ids)]
    ids = pd.Index(untreated["customer_id"])
    y = build_labels(tables, cutoff, ids, horizon_days=model_horizon, mode=mode).to_numpy(dtype="float64")
    p = untreated["churn_probability"].to_numpy(dtype="float64")
    in_control = ids.isin(control_ids)
    return Quality(
        population="scored customers the campaign did not treat (its control group and the customers not selected)",
        customers=int(len(ids)),
        churn_rate=float(y.mean()) if len(y) else math.nan,
        mean_predicted=float(p.mean()) if len(p) else math.nan,
        roc_auc=_auc(y, p),
        control_customers=int(in_control.sum()),
        auc_control=_auc(y[in_control], p[in_control]),
        calibration=calibration_table(p, y),
        cutoff=str(cutoff.date()),
        horizon_days=model_horizon,
        label_mode=mode,
    )
