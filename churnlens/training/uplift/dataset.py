"""Past randomised campaigns as uplift training rows: features at the contact date, churn after it.

One row per (campaign, contacted customer) of the ``contacts`` table, treatment and control:

- **features**: the point-in-time snapshot at the customer's contact timestamp, from the same
  builders as scoring (:func:`churnlens.features.build_snapshot`): nothing at or after the
  contact, the campaign's own contact included, is seen;
- **label**: churn in ``[contact, contact + H)`` (:func:`churnlens.features.build_labels`);
- **treated**: the row's ``group`` (``treatment`` / ``control``); **propensity**: the treated
  share of the row's action within its campaign (known by design: the control group is drawn
  at random).

Campaigns whose outcome window has not passed in the data are left out, and so are contacted
customers who were not active at the contact (no snapshot row): both are counted in the notes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features import build_labels, build_snapshot, label_mode, observed_until

Progress = Callable[[int, int], None]

#: Columns of :attr:`UpliftData.rows` besides the features.
ROW_COLUMNS = ["customer_id", "campaign_id", "contacted_at", "action", "treated", "churned", "propensity"]


@dataclass
class UpliftData:
    """Training rows of every matured campaign.

    Attributes
    ----------
    features : DataFrame
        Snapshot columns, one row per (campaign, customer), positional index.
    rows : DataFrame
        :data:`ROW_COLUMNS`, aligned with ``features``.
    campaigns : DataFrame
        One row per campaign of ``contacts``: campaign_id, send (first contact), outcome_end,
        contacted, treated, control, rows (kept), matured; sorted by send.
    label_mode : str
    horizon_days : int
    notes : list of str
        What was left out and why.
    """

    features: pd.DataFrame
    rows: pd.DataFrame
    campaigns: pd.DataFrame
    label_mode: str
    horizon_days: int
    notes: list[str] = field(default_factory=list)

    def subset(self, mask: np.ndarray) -> UpliftData:
        """The rows where ``mask`` holds (same campaigns, notes)."""
        mask = np.asarray(mask, dtype=bool)
        return UpliftData(
            self.features[mask].reset_index(drop=True), self.rows[mask].reset_index(drop=True), self.campaigns,
            self.label_mode, self.horizon_days, list(self.notes),
        )  # fmt: skip


def campaign_table(tables: Tables, horizon_days: int) -> pd.DataFrame:
    """Every campaign of ``contacts``: first contact, outcome end, counts, and whether it matured.

    Raises
    ------
    InputError
        Without a ``contacts`` table, or when it holds no row.
    """
    contacts = tables.contacts
    if contacts is None or contacts.empty:
        raise InputError(
            "uplift models learn from past randomised campaigns, and the data has no contacts table (or an empty "
            "one): score with --campaign-id, send, then append the contact plan to contacts"
        )
    until = observed_until(tables.replace(contacts=None))
    group = contacts["group"].astype("string").str.strip().str.lower()
    frame = pd.DataFrame(
        {
            "campaign_id": contacts["campaign_id"].astype("string"),
            "timestamp": contacts["timestamp"],
            "treated": (group == "treatment").to_numpy(dtype=bool, na_value=False),
            "control": (group == "control").to_numpy(dtype=bool, na_value=False),
        }
    )
    out = frame.groupby("campaign_id", sort=False).agg(
        send=("timestamp", "min"), last=("timestamp", "max"), contacted=("timestamp", "size"),
        treated=("treated", "sum"), control=("control", "sum"),
    )  # fmt: skip
    out["outcome_end"] = out["last"] + pd.Timedelta(days=int(horizon_days))
    out["matured"] = out["outcome_end"] <= until
    out = out.reset_index().sort_values(["send", "campaign_id"], kind="stable").reset_index(drop=True)
    return out[["campaign_id", "send", "outcome_end", "contacted", "treated", "control", "matured"]]


def build_uplift_data(
    tables: Tables,
    *,
    features: FeatureConfig,
    horizon_days: int,
    mode: str = "auto",
    progress: Progress | None = None,
) -> UpliftData:
    """Uplift training rows of every matured campaign of ``tables.contacts`` (see the module docstring).

    Parameters
    ----------
    tables : Tables
        Validated tables with a ``contacts`` table.
    features : FeatureConfig
        How snapshots are built (the model records it; scoring builds the same).
    horizon_days : int
        Outcome window after each contact.
    mode : {"auto", "non_contractual", "contractual"}
        What churn means (:func:`churnlens.features.label_mode`).
    progress : callable(done, total), optional
        Called after each contact timestamp's snapshot.

    Returns
    -------
    UpliftData
    """
    mode = label_mode(tables, mode)
    campaigns = campaign_table(tables, horizon_days)
    notes: list[str] = []
    for row in campaigns[~campaigns["matured"]].itertuples():
        notes.append(
            f"campaign {row.campaign_id} (sent {pd.Timestamp(row.send).date()}) left out: its {horizon_days}-day "
            f"outcome runs to {(pd.Timestamp(row.outcome_end) - pd.Timedelta(microseconds=1)).date()}, after the data"
        )
    matured = set(campaigns.loc[campaigns["matured"], "campaign_id"])
    contacts = tables.contacts
    ids = contacts["campaign_id"].astype("string")
    keep = ids.isin(matured).to_numpy(dtype=bool, na_value=False)
    rows = contacts.loc[keep].copy()
    rows["campaign_id"] = rows["campaign_id"].astype("string")
    rows["customer_id"] = rows["customer_id"].astype("string")
    group = rows["group"].astype("string").str.strip().str.lower()
    rows = rows[group.isin(["treatment", "control"]).to_numpy(dtype=bool, na_value=False)]
    # a customer contacted twice by one campaign (a resend) counts once, at the first contact
    rows = rows.sort_values(["campaign_id", "customer_id", "timestamp"], kind="stable")
    rows = rows.drop_duplicates(["campaign_id", "customer_id"], keep="first")
    rows = rows.sort_values(["timestamp", "campaign_id", "customer_id"], kind="stable").reset_index(drop=True)

    feature_parts: list[pd.DataFrame] = []
    meta_parts: list[pd.DataFrame] = []
    inactive: dict[str, int] = {}
    stamps = rows["timestamp"].unique()
    for done, when in enumerate(sorted(stamps), start=1):
        part = rows[(rows["timestamp"] == when).to_numpy()]
        snapshot = build_snapshot(tables, pd.Timestamp(when), features)
        present = pd.Index(part["customer_id"]).isin(snapshot.index)
        for campaign, count in part.loc[~present, "campaign_id"].value_counts().items():
            inactive[str(campaign)] = inactive.get(str(campaign), 0) + int(count)
        part = part[present]
        ids_here = pd.Index(part["customer_id"], dtype="string")
        feature_parts.append(snapshot.reindex(ids_here).reset_index(drop=True))
        churned = build_labels(tables, pd.Timestamp(when), ids_here, horizon_days=horizon_days, mode=mode)
        meta_parts.append(
            pd.DataFrame(
                {
                    "customer_id": pd.array(ids_here, dtype="string"),
                    "campaign_id": pd.array(part["campaign_id"].to_numpy(), dtype="string"),
                    "contacted_at": np.full(len(part), pd.Timestamp(when).to_datetime64()).astype("datetime64[us]"),
                    "action": pd.array(part["action"].astype("string").to_numpy(), dtype="string"),
                    "treated": (part["group"].astype("string").str.strip().str.lower() == "treatment").to_numpy(),
                    "churned": churned.to_numpy(dtype=np.int8),
                }
            )
        )
        if progress is not None:
            progress(done, len(stamps))
    for campaign, count in sorted(inactive.items()):
        notes.append(
            f"campaign {campaign}: {count:,} contacted customers were not active at their contact (no purchase in "
            "the active window, or cancelled): no features, left out"
        )
    if not meta_parts:
        raise InputError(
            "no campaign of the contacts table has matured: each needs its whole outcome window "
            f"({horizon_days} days after the contact) in the data"
            + (f" ({'; '.join(notes)})" if notes else "")
        )
    feature_frame = _concat_features(feature_parts)
    meta = pd.concat(meta_parts, ignore_index=True)
    key = meta["campaign_id"].astype(str) + "\x1f" + meta["action"].astype(str)
    meta["propensity"] = meta.groupby(key.to_numpy())["treated"].transform("mean").to_numpy(dtype="float64")
    kept = meta.groupby("campaign_id").size()
    campaigns["rows"] = campaigns["campaign_id"].map(kept).fillna(0).astype("int64")
    return UpliftData(feature_frame, meta[ROW_COLUMNS], campaigns, mode, int(horizon_days), notes)


def _concat_features(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Snapshots of several dates stacked, categorical columns on the union of their levels."""
    parts = [p for p in parts if len(p.columns)]
    categorical = sorted({c for p in parts for c in p.columns if isinstance(p[c].dtype, pd.CategoricalDtype)})
    levels = {c: sorted({str(v) for p in parts if c in p.columns for v in p[c].cat.categories}) for c in categorical}
    fixed = []
    for p in parts:
        p = p.copy()
        for c in categorical:
            if c in p.columns:
                p[c] = pd.Categorical(p[c].astype("string").to_numpy(dtype=object, na_value=None), categories=levels[c])
        fixed.append(p)
    out = pd.concat(fixed, ignore_index=True)
    for c in categorical:  # a date whose snapshot lacked the column leaves NaN objects
        out[c] = pd.Categorical(out[c].astype("string").to_numpy(dtype=object, na_value=None), categories=levels[c])
    return out
