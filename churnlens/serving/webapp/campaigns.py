"""Campaigns written by ``churnlens score``, found on disk and held in memory for fast pages.

A campaign is ``<stem>.csv|parquet`` with its ``<stem>.summary.json`` (written last, so a
campaign with a summary is complete) and ``<stem>.reasons.*`` siblings. ``--campaign`` names
one campaign file or a folder holding several (also one level of sub-folders);
:class:`CampaignStore` lists them again on every request and reloads one whose files
changed, so a campaign written while the app runs appears without a restart.

Pages of a 1M-customer list must come back in well under 300 ms, so a loaded
:class:`Campaign` keeps its columns as numpy arrays and answers a query with whole-array
operations only: filters are boolean masks, the id-prefix search is a binary search in the
sorted ids, and each sort order is one permutation computed on first use and cached; a page
is ``order[mask[order]][offset:offset + size]``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churnlens.config import REASON_FAMILIES
from churnlens.errors import InputError
from churnlens.serving.actions import reason_family

SUMMARY_SUFFIX = ".summary.json"
CAMPAIGN_SUFFIXES = (".parquet", ".csv")
BANDS = ("high", "medium", "low")
#: Columns the list can be sorted on, in table order.
SORT_COLUMNS = (
    "rank",
    "customer_id",
    "churn_probability",
    "risk_band",
    "customer_value",
    "value_at_risk",
    "selected",
    "top_reason",
    "action",
)
#: The direction a first click on a column's header sorts in.
DEFAULT_DIRECTION = {
    "rank": "asc", "customer_id": "asc", "churn_probability": "desc", "risk_band": "desc",
    "customer_value": "desc", "value_at_risk": "desc", "selected": "desc", "top_reason": "desc", "action": "asc",
}  # fmt: skip
PAGE_SIZES = (25, 50, 100, 200)
MAX_SEARCH = 100
#: Campaigns kept in memory at once (a 1M-customer campaign takes about 150 MB).
CACHED_CAMPAIGNS = 3


@dataclass(frozen=True)
class CampaignRef:
    """Where a campaign's files are and when they last changed."""

    name: str
    table: Path
    summary: Path
    reasons: Path | None
    stamp: tuple[int, ...]

    @property
    def modified(self) -> int:
        """Latest modification time of its files (ns)."""
        return max(self.stamp)


def _ref(summary: Path, root: Path) -> CampaignRef | None:
    stem = summary.name[: -len(SUMMARY_SUFFIX)]
    tables = [summary.with_name(stem + suffix) for suffix in CAMPAIGN_SUFFIXES]
    table = next((t for t in tables if t.is_file()), None)
    if table is None:
        return None
    reasons = next(
        (summary.with_name(f"{stem}.reasons{s}") for s in CAMPAIGN_SUFFIXES
         if summary.with_name(f"{stem}.reasons{s}").is_file()), None,
    )  # fmt: skip
    try:
        stamp = tuple(p.stat().st_mtime_ns for p in (table, summary, reasons) if p is not None)
    except FileNotFoundError:  # replaced while we looked: the next listing sees it
        return None
    relative = summary.parent.relative_to(root) if summary.parent != root else Path()
    name = (relative / stem).as_posix()
    return CampaignRef(name=name, table=table, summary=summary, reasons=reasons, stamp=stamp)


def find_campaigns(path: Path) -> list[CampaignRef]:
    """The campaigns at ``path`` (a campaign file, or a folder and its sub-folders), newest first."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in CAMPAIGN_SUFFIXES:
            raise InputError(f"--campaign {path} must be a campaign file (.csv or .parquet) or a folder of them")
        summary = path.with_name(path.stem + SUMMARY_SUFFIX)
        ref = _ref(summary, path.parent) if summary.is_file() else None
        if ref is None:
            raise InputError(f"--campaign {path} has no {summary.name} beside it: was it written by churnlens score?")
        return [ref]
    if not path.is_dir():
        raise InputError(f"--campaign {path} does not exist")
    summaries = sorted(path.glob("*" + SUMMARY_SUFFIX)) + sorted(path.glob("*/*" + SUMMARY_SUFFIX))
    refs = [r for r in (_ref(s, path) for s in summaries) if r is not None]
    return sorted(refs, key=lambda r: (-r.modified, r.name))


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    """What the list shows: filters, search, order and page (all from the page's URL)."""

    band: str = ""
    selected: str = ""
    family: str = ""
    q: str = ""
    sort: str = "rank"
    direction: str = "asc"
    page: int = 1
    size: int = 50

    @classmethod
    def parse(cls, params: dict[str, str]) -> Query:
        """A query from URL parameters; anything unknown falls back to the default (never an error)."""
        band = params.get("band", "")
        selected = params.get("selected", "")
        family = params.get("family", "")
        sort = params.get("sort", "rank")
        sort = sort if sort in SORT_COLUMNS else "rank"
        direction = params.get("dir", DEFAULT_DIRECTION[sort])
        try:
            page = max(1, min(int(params.get("page", 1)), 10**9))
        except ValueError:
            page = 1
        try:
            size = int(params.get("size", 50))
        except ValueError:
            size = 50
        return cls(
            band=band if band in BANDS else "",
            selected=selected if selected in ("yes", "no") else "",
            family=family if family in REASON_FAMILIES else "",
            q=params.get("q", "").strip()[:MAX_SEARCH],
            sort=sort,
            direction=direction if direction in ("asc", "desc") else DEFAULT_DIRECTION[sort],
            page=page,
            size=size if size in PAGE_SIZES else 50,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """URL parameters of this query (defaults left out) with ``changes`` applied."""
        query = replace(self, **changes)
        out = {
            "band": query.band, "selected": query.selected, "family": query.family, "q": query.q,
            "sort": query.sort if query.sort != "rank" else "", "dir": query.direction
            if query.direction != DEFAULT_DIRECTION[query.sort] else "",
            "page": str(query.page) if query.page != 1 else "", "size": str(query.size) if query.size != 50 else "",
        }  # fmt: skip
        return {k: v for k, v in out.items() if v}

    @property
    def filtered(self) -> bool:
        return bool(self.band or self.selected or self.family or self.q)


@dataclass
class Page:
    """One page of the list: row positions in the campaign, and where it is."""

    rows: np.ndarray
    total: int
    page: int
    pages: int


# --------------------------------------------------------------------------- a loaded campaign


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    if path.suffix.lower() == ".csv":
        convert = pa_csv.ConvertOptions(column_types={"customer_id": pa.string()}, include_columns=columns)
        return pa_csv.read_csv(path, convert_options=convert)
    return pq.read_table(path, columns=columns)


def _float(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    column = pc.cast(table[name], pa.float64())
    return column.to_numpy(zero_copy_only=False).astype("float64", copy=False)


def _text(table: pa.Table, name: str) -> np.ndarray:
    column = pc.cast(table[name], pa.string())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


@dataclass
class Campaign:
    """A campaign in memory: the list's columns as arrays, its summary and its top reasons.

    Attributes
    ----------
    name : str
    summary : dict
        ``<stem>.summary.json`` as written by ``churnlens score``.
    table : pyarrow.Table
        The campaign file as read (for CSV downloads of its own columns).
    ids : ndarray of str
        Customer ids, in file order (fixed-width unicode, for binary search).
    """

    ref: CampaignRef
    summary: dict[str, Any]
    table: pa.Table
    ids: np.ndarray
    probability: np.ndarray
    band: np.ndarray
    value: np.ndarray
    value_at_risk: np.ndarray
    selected: np.ndarray
    rank: np.ndarray
    family: np.ndarray
    reason_feature: np.ndarray
    reason_effect: np.ndarray
    reason_text: np.ndarray
    #: each customer's action label (``score --actions``); None when the campaign assigned none
    action: np.ndarray
    id_order: np.ndarray
    sorted_ids: np.ndarray
    _orders: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.ref.name

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lang(self) -> str:
        """Language the campaign's reason sentences were written in."""
        return str(self.summary.get("lang", "en"))

    def position(self, customer_id: str) -> int | None:
        """Row of ``customer_id`` in the campaign (binary search), None when absent."""
        i = int(np.searchsorted(self.sorted_ids, customer_id))
        if i < len(self.sorted_ids) and self.sorted_ids[i] == customer_id:
            return int(self.id_order[i])
        return None

    # ----------------------------------------------------------------- sorting

    def _key(self, column: str) -> np.ndarray:
        """The numeric key of a sort column (NaN: no value, always last)."""
        if column == "customer_id":
            key = np.empty(len(self), dtype="float64")
            key[self.id_order] = np.arange(len(self), dtype="float64")
            return key
        if column == "risk_band":  # by severity: low < medium < high
            return np.where(self.band < 0, np.nan, 2.0 - self.band)
        if column == "selected":
            return self.selected.astype("float64")
        if column == "top_reason":
            return self.reason_effect
        if column == "action":
            labels = np.array([a if isinstance(a, str) else "" for a in self.action], dtype=object)
            distinct, code = np.unique(labels, return_inverse=True)
            return np.where(labels == "", np.nan, code.astype("float64"))
        return {
            "rank": self.rank.astype("float64"), "churn_probability": self.probability,
            "customer_value": self.value, "value_at_risk": self.value_at_risk,
        }[column]  # fmt: skip

    def order(self, column: str, direction: str) -> np.ndarray:
        """Row positions sorted by ``column`` (ties by rank, missing values last), cached."""
        cache_key = (column, direction)
        cached = self._orders.get(cache_key)
        if cached is not None:
            return cached
        key = self._key(column)
        missing = np.isnan(key)
        key = np.where(missing, np.inf, key if direction == "asc" else -key)
        order = np.lexsort((self.rank, key)).astype(np.int32 if len(self) < 2**31 else np.int64)
        self._orders[cache_key] = order
        return order

    # ----------------------------------------------------------------- filtering

    def mask(self, query: Query) -> np.ndarray | None:
        """Rows the query's filters keep (None: all)."""
        mask = None

        def both(m: np.ndarray) -> np.ndarray:
            return m if mask is None else mask & m

        if query.band:
            mask = both(self.band == BANDS.index(query.band))
        if query.selected:
            mask = both(self.selected if query.selected == "yes" else ~self.selected)
        if query.family:
            mask = both(self.family == REASON_FAMILIES.index(query.family))
        if query.q:
            lo = np.searchsorted(self.sorted_ids, query.q, side="left")
            hi = np.searchsorted(self.sorted_ids, query.q + "\U0010ffff", side="left")
            found = np.zeros(len(self), dtype=bool)
            found[self.id_order[lo:hi]] = True
            mask = both(found)
        return mask

    def rows(self, query: Query) -> np.ndarray:
        """Every row the query keeps, in its order."""
        order = self.order(query.sort, query.direction)
        mask = self.mask(query)
        return order if mask is None else order[mask[order]]

    def page(self, query: Query) -> Page:
        """The rows of the query's page (the last page when it asks beyond the end)."""
        rows = self.rows(query)
        total = len(rows)
        pages = max(1, -(-total // query.size))
        page = min(query.page, pages)
        start = (page - 1) * query.size
        return Page(rows=rows[start : start + query.size], total=total, page=page, pages=pages)


def _top_reasons(ref: CampaignRef, ids_sorted: np.ndarray, id_order: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Per campaign row: the top reason's feature, family code, effect and sentence."""
    feature = np.full(n, None, dtype=object)
    family = np.full(n, -1, dtype=np.int8)
    effect = np.full(n, np.nan)
    text = np.full(n, None, dtype=object)
    if ref.reasons is None:
        return feature, family, effect, text
    if ref.reasons.suffix.lower() == ".csv":
        reasons = _read(ref.reasons)
    else:  # only the columns and rows used: the top reasons
        names = pq.read_schema(ref.reasons).names
        wanted = [c for c in ("customer_id", "rank", "feature", "effect", "text") if c in names]
        reasons = pq.read_table(ref.reasons, columns=wanted, filters=[("rank", "=", 1)] if "rank" in names else None)
    if "rank" in reasons.column_names:
        reasons = reasons.filter(pc.equal(reasons["rank"], 1))
    if reasons.num_rows == 0:
        return feature, family, effect, text
    rid = np.asarray(_text(reasons, "customer_id"), dtype=str)
    at = np.searchsorted(ids_sorted, rid)
    at = np.minimum(at, len(ids_sorted) - 1)
    known = ids_sorted[at] == rid
    rows = id_order[at[known]]
    features = _text(reasons, "feature")[known]
    feature[rows] = features
    codes = {f: (REASON_FAMILIES.index(fam) if (fam := reason_family(f)) else -1) for f in set(features.tolist())}
    family[rows] = np.array([codes[f] for f in features], dtype=np.int8)
    effect[rows] = _float(reasons, "effect")[known]
    text[rows] = _text(reasons, "text")[known]
    return feature, family, effect, text


def load_campaign(ref: CampaignRef) -> Campaign:
    """Read a campaign's files into a :class:`Campaign`.

    Raises
    ------
    InputError
        When the campaign file lacks a column of the campaign list, naming it.
    """
    summary = json.loads(ref.summary.read_text(encoding="utf-8"))
    table = _read(ref.table).combine_chunks()  # one chunk: taking a page's rows is then O(rows taken)
    needed = ["customer_id", "churn_probability", "risk_band", "rank", "selected"]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise InputError(f"campaign file {ref.table} lacks the columns {missing}: was it written by churnlens score?")
    ids = np.asarray(_text(table, "customer_id"), dtype=str)
    id_order = np.argsort(ids, kind="stable")
    sorted_ids = ids[id_order]
    band_text = _text(table, "risk_band")
    band = np.full(len(ids), -1, dtype=np.int8)
    for i, name in enumerate(BANDS):
        band[band_text == name] = i
    selected = pc.cast(table["selected"], pa.bool_()).to_numpy(zero_copy_only=False).astype(bool)
    feature, family, effect, text = _top_reasons(ref, sorted_ids, id_order, len(ids))
    return Campaign(
        ref=ref, summary=summary, table=table, ids=ids, probability=_float(table, "churn_probability"), band=band,
        value=_float(table, "customer_value"), value_at_risk=_float(table, "value_at_risk"), selected=selected,
        rank=_float(table, "rank").astype(np.int64), family=family, reason_feature=feature, reason_effect=effect,
        reason_text=text, id_order=id_order, sorted_ids=sorted_ids,
        action=_text(table, "action_label") if "action_label" in table.column_names else np.full(len(ids), None),
    )  # fmt: skip


class CampaignStore:
    """The campaigns under ``--campaign``, listed on each call and loaded (then cached) on demand.

    Parameters
    ----------
    path : Path
        A campaign file or a folder of campaigns.
    cached : int
        Campaigns kept in memory (least recently used dropped first).
    """

    def __init__(self, path: str | Path, *, cached: int = CACHED_CAMPAIGNS) -> None:
        self.path = Path(path)
        self.cached = cached
        self._loaded: OrderedDict[str, Campaign] = OrderedDict()
        self._lock = threading.Lock()
        find_campaigns(self.path)  # a bad path fails at startup, naming it

    def refs(self) -> list[CampaignRef]:
        """The campaigns as on disk now, newest first."""
        return find_campaigns(self.path)

    def get(self, name: str | None) -> Campaign | None:
        """The campaign called ``name`` (default: the newest), loaded again if its files changed."""
        refs = self.refs()
        if not refs:
            return None
        ref = refs[0] if not name else next((r for r in refs if r.name == name), None)
        if ref is None:
            return None
        with self._lock:  # one load at a time: a second request for it waits and reuses it
            loaded = self._loaded.get(ref.name)
            if loaded is not None and loaded.ref.stamp == ref.stamp:
                self._loaded.move_to_end(ref.name)
                return loaded
            campaign = load_campaign(ref)
            self._loaded[ref.name] = campaign
            self._loaded.move_to_end(ref.name)
            while len(self._loaded) > self.cached:
                self._loaded.popitem(last=False)
            return campaign


__all__ = [
    "BANDS",
    "PAGE_SIZES",
    "SORT_COLUMNS",
    "Campaign",
    "CampaignRef",
    "CampaignStore",
    "Page",
    "Query",
    "find_campaigns",
    "load_campaign",
]
