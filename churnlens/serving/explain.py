"""Exact SHAP contributions of the model and the top reasons as sentences marketers can trust.

Contributions come from LightGBM's own TreeSHAP (``Booster.predict(pred_contrib=True)``):
exact, identical to ``shap.TreeExplainer`` on LightGBM models (which calls it itself), plus
the linear base's exact contributions. They are in log-odds: per customer the
``base_value`` plus all feature contributions equals the model's raw margin.

A **reason** is a *concept* of the feature catalog (purchases over 30, 90 and 365 days and
spend are one "activity" concept) that raises this customer's risk:

1. a concept's contribution is the sum of its features' exact SHAP values (still additive);
2. its **effect** is the change of churn probability it explains, by
   :func:`probability_effects` (the concepts' log-odds mapped through the calibrated link
   along the waterfall, largest first): the effects of all concepts add up to the
   customer's probability minus the average customer's;
3. a concept is a reason only when it raises the risk *and* one of its features stands on the
   risky side of the median customer, by the catalog's risk direction (fewer purchases than
   the median when fewer purchases raise risk...). That feature — the one with the largest
   contribution among those — words the reason. A concept whose features all sit on the safe
   side (SHAP can be positive there, through interactions and the base) is not a reason and
   is counted as hidden; so is one whose value would read the same as the median's.

Reasons are picked with whole-matrix operations (no per-customer loop) and worded by the
catalog (:func:`churnlens.features.catalog.render_reason`), once per distinct displayed case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnlens.errors import InputError
from churnlens.model import ChurnModel

Progress = Callable[[int, int], None]

#: Rows per ``pred_contrib`` call: bounds memory (rows x features x 8 bytes) and paces progress.
DEFAULT_CHUNK = 20_000
REASON_COLUMNS = [
    "customer_id", "rank", "concept", "feature", "value", "value_label", "contribution", "effect", "text",
]
#: Candidate concepts worded per customer beyond the n asked (some read the same as the median).
_SPARE = 2


def _customer_ids(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return index.get_level_values("customer_id")
    return index


def shap_contributions(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    matrix: np.ndarray | None = None,
) -> pd.DataFrame:
    """Exact SHAP contributions in log-odds (TreeSHAP + any linear base), computed in chunks.

    Parameters
    ----------
    model : ChurnModel
    snapshot : DataFrame
        One row per customer with at least the model's features.
    chunk_size : int
        Rows per LightGBM call.
    progress : callable(done, total), optional
        Called after each chunk with rows done so far.
    matrix : ndarray, optional
        ``model.matrix(snapshot)`` if already computed.

    Returns
    -------
    DataFrame
        One column per model feature plus ``base_value``; rows sum to the raw margin.
    """
    M = model.matrix(snapshot) if matrix is None else matrix
    n = len(M)
    out = np.empty((n, len(model.features) + 1), dtype="float64")
    step = max(int(chunk_size), 1)
    for start in range(0, n, step):  # LightGBM refuses empty input: no call when n == 0
        stop = min(start + step, n)
        out[start:stop] = model.contributions_of_matrix(M[start:stop])
        if progress is not None:
            progress(stop, n)
    if n == 0 and progress is not None:
        progress(0, 0)
    return pd.DataFrame(out, index=snapshot.index, columns=model.features + ["base_value"], copy=False)


def probability_effects(parts: np.ndarray, base: np.ndarray, link: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Log-odds contributions turned into changes of the calibrated churn probability.

    The waterfall of a customer starts at the model's base value (the average customer's
    log-odds), adds the parts one at a time, largest absolute contribution first, and maps
    every running total through the calibrated link. A part's effect is the step it makes in
    probability. The effects of a row add up exactly to ``link(base + sum(parts)) - link(base)``:
    the customer's probability minus the average customer's. The order is a convention (the
    one the card's chart draws); with a non-linear link another order would share the total
    differently, never change it.

    Parameters
    ----------
    parts : ndarray (rows x parts)
        Exact SHAP contributions in log-odds (per feature, or summed per concept).
    base : ndarray (rows,)
        Base value of each row (log-odds).
    link : callable
        Calibrated probability of a margin (``ChurnModel.calibrator.transform``), elementwise.

    Returns
    -------
    ndarray (rows x parts)
        Probability change of each part, in the columns of ``parts`` (a probability, not
        percentage points: 0.06 is "+6 pts").
    """
    parts = np.asarray(parts, dtype="float64")
    rows, width = parts.shape
    if rows == 0 or width == 0:
        return np.zeros_like(parts)
    order = np.argsort(-np.abs(parts), axis=1, kind="stable")
    steps = np.take_along_axis(parts, order, axis=1)
    running = np.asarray(base, dtype="float64")[:, None] + np.cumsum(steps, axis=1)
    levels = link(np.concatenate([np.asarray(base, dtype="float64")[:, None], running], axis=1))
    effects = np.empty_like(parts)
    np.put_along_axis(effects, order, np.diff(levels, axis=1), axis=1)
    return effects


def select_reasons(contributions: pd.DataFrame, *, n: int = 3, only_risk_up: bool = True) -> pd.DataFrame:
    """The ``n`` strongest contributions per customer as a long frame.

    Parameters
    ----------
    contributions : DataFrame
        Output of :func:`shap_contributions` (a ``base_value`` column is ignored).
    n : int
        Reasons per customer (at most the number of features).
    only_risk_up : bool
        Keep only contributions > 0 (pushing churn risk up), strongest first; when False,
        the largest absolute contributions of either sign.

    Returns
    -------
    DataFrame
        Columns customer_id, rank (1 = strongest), feature, contribution, and ``_row`` (the
        customer's position in ``contributions``); customers with fewer qualifying
        contributions have fewer rows. Ordered by customer then rank.
    """
    if int(n) != n or n < 1:
        raise InputError(f"the number of reasons must be a whole number >= 1, got {n}")
    features = [c for c in contributions.columns if c != "base_value"]
    values = contributions[features].to_numpy(dtype="float64")
    rows, width = values.shape
    k = min(int(n), width)
    if rows == 0 or k == 0:
        return pd.DataFrame(
            {
                "customer_id": pd.Series([], dtype="string"),
                "rank": pd.Series([], dtype="int64"),
                "feature": pd.Series([], dtype="string"),
                "contribution": pd.Series([], dtype="float64"),
                "_row": pd.Series([], dtype="int64"),
            }
        )
    key = np.where(values > 0, values, -np.inf) if only_risk_up else np.abs(values)
    top = np.argpartition(-key, k - 1, axis=1)[:, :k] if k < width else np.tile(np.arange(width), (rows, 1))
    top_key = np.take_along_axis(key, top, axis=1)
    order = np.argsort(-top_key, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top_key = np.take_along_axis(top_key, order, axis=1)
    keep = top_key > 0 if only_risk_up else np.isfinite(top_key)
    row_idx = np.broadcast_to(np.arange(rows)[:, None], top.shape)[keep]
    col_idx = top[keep]
    ranks = np.broadcast_to(np.arange(1, k + 1)[None, :], top.shape)[keep]
    ids = _customer_ids(contributions.index)
    return pd.DataFrame(
        {
            "customer_id": pd.array(np.asarray(ids, dtype=object)[row_idx], dtype="string"),
            "rank": ranks.astype("int64"),
            "feature": pd.array(np.asarray(features, dtype=object)[col_idx], dtype="string"),
            "contribution": values[row_idx, col_idx],
            "_row": row_idx,
        }
    )


def reference_medians(model: ChurnModel) -> dict[str, float]:
    """Training medians of the model's numeric features (the ``ref`` of reason sentences)."""
    metadata = model.metadata
    cached = model.__dict__.get("_reference_medians")
    if cached is None or cached[0] is not metadata:  # once per model (a served model explains often)
        features = set(metadata.features)
        medians = {
            name: float(stats["median"])
            for name, stats in metadata.reference.items()
            if isinstance(stats, Mapping) and stats.get("median") is not None and name in features
        }
        cached = model.__dict__["_reference_medians"] = (metadata, medians)
    return dict(cached[1])


@dataclass(frozen=True)
class ConceptMap:
    """The model's features grouped by catalog concept, with what reasons need of each feature."""

    concepts: list[str]
    member: np.ndarray  # features x concepts, 0/1
    of_feature: np.ndarray  # concept position of each feature
    direction: np.ndarray  # +1 higher raises risk, -1 lower does, 0 category
    reference: np.ndarray  # the median customer's value (NaN: none)
    categorical: np.ndarray  # bool per feature
    #: concepts x most members: each concept's feature positions in model order, padded with
    #: ``len(features)`` (a column of -inf added to the scores), for whole-matrix lead choice
    groups: np.ndarray | None = None


def concept_map(model: ChurnModel) -> ConceptMap:
    """Concepts of the model's features (a feature outside the catalog is its own concept)."""
    cached = model.__dict__.get("_concept_map")
    if cached is not None and cached[0] is model.metadata:
        return cached[1]
    from churnlens.features.catalog import spec_for

    features = model.features
    names, direction = [], []
    for name in features:
        try:
            spec = spec_for(name)
            names.append(spec.concept)
            direction.append({"higher": 1, "lower": -1}.get(spec.risk_direction, 0))
        except KeyError:
            names.append(name)
            direction.append(0)
    concepts = list(dict.fromkeys(names))
    of_feature = np.array([concepts.index(c) for c in names], dtype=np.int64)
    member = np.zeros((len(features), len(concepts)))
    member[np.arange(len(features)), of_feature] = 1.0
    medians = reference_medians(model)
    categorical = set(model.metadata.categorical_levels)
    members = [np.flatnonzero(of_feature == c) for c in range(len(concepts))]
    groups = np.full((len(concepts), max((len(m) for m in members), default=0)), len(features), dtype=np.int64)
    for c, positions in enumerate(members):
        groups[c, : len(positions)] = positions
    out = ConceptMap(
        concepts=concepts,
        member=member,
        of_feature=of_feature,
        direction=np.array(direction, dtype=np.int64),
        reference=np.array([medians.get(f, np.nan) for f in features], dtype="float64"),
        categorical=np.array([f in categorical for f in features]),
        groups=groups,
    )
    model.__dict__["_concept_map"] = (model.metadata, out)
    return out


def risky_side(matrix: np.ndarray, concepts: ConceptMap) -> np.ndarray:
    """Whether each value stands on the risky side of the median customer (rows x features).

    Higher-is-riskier features need a value above the median, lower-is-riskier ones a value
    below it; a category raising the risk is risky by definition. Missing values, or
    features without a median, are never on a side.
    """
    x, ref, direction = matrix, concepts.reference[None, :], concepts.direction[None, :]
    with np.errstate(invalid="ignore"):
        numeric = np.where(direction > 0, x > ref, np.where(direction < 0, x < ref, ~np.isnan(x)))
    return np.where(concepts.categorical[None, :], ~np.isnan(x), numeric & ~np.isnan(ref))


@dataclass
class _Chosen:
    rows: np.ndarray  # customer position of each candidate reason
    concept: np.ndarray  # concept position
    feature: np.ndarray  # lead feature position
    contribution: np.ndarray  # concept log-odds
    effect: np.ndarray  # concept probability change
    order: np.ndarray  # rank among the customer's candidates (0 = strongest)
    hidden: int  # concepts raising risk that had no feature on the risky side


def _choose(contrib: np.ndarray, base: np.ndarray, matrix: np.ndarray, concepts: ConceptMap,
            link: Callable[[np.ndarray], np.ndarray], k: int) -> _Chosen:
    """Up to ``k`` candidate concepts per customer, strongest effect first, each with its lead feature."""
    rows, width = contrib.shape
    per_concept = contrib @ concepts.member
    effects = probability_effects(per_concept, base, link)
    lead_score = np.where((contrib > 0) & risky_side(matrix, concepts), contrib, -np.inf)
    # the lead feature of each concept: its largest positive contribution on the risky side (the
    # first in model order on a tie), -1 when none; all concepts at once through the padded groups
    groups = concepts.groups
    if groups is None or groups.shape[1] == 0:
        lead = np.full((rows, len(concepts.concepts)), -1, dtype=np.int64)
    else:
        padded = np.concatenate([lead_score, np.full((rows, 1), -np.inf)], axis=1)[:, groups]
        at = padded.argmax(axis=2)
        best = np.take_along_axis(padded, at[:, :, None], axis=2)[:, :, 0]
        lead = np.where(best > -np.inf, groups[np.arange(groups.shape[0])[None, :], at], -1)
    raises = per_concept > 0
    ok = raises & (lead >= 0)
    key = np.where(ok, effects, -np.inf)
    take = min(k, key.shape[1])
    top = np.argsort(-key, axis=1, kind="stable")[:, :take]
    top_key = np.take_along_axis(key, top, axis=1)
    keep = np.isfinite(top_key)
    row_idx = np.broadcast_to(np.arange(rows)[:, None], top.shape)[keep]
    concept = top[keep]
    return _Chosen(
        rows=row_idx,
        concept=concept,
        feature=lead[row_idx, concept],
        contribution=per_concept[row_idx, concept],
        effect=effects[row_idx, concept],
        order=np.broadcast_to(np.arange(take)[None, :], top.shape)[keep],
        hidden=int((raises & (lead < 0)).sum()),
    )


#: Up to this many snapshot rows :class:`_Cells` converts every cell at once.
_FEW_CELL_ROWS = 16


class _Cells:
    """Cells of some snapshot rows as Python objects, a column at a time, only for the columns read."""

    def __init__(self, snapshot: pd.DataFrame, wanted: list[int]) -> None:
        self.snapshot, self.wanted = snapshot, wanted
        self.where = {pos: k for k, pos in enumerate(wanted)}
        self.columns: dict[str, np.ndarray | None] = {}
        # a few rows (a customer scored alone): every cell converted at once costs less than the
        # columns a sentence reads converted one by one
        few = len(wanted) == len(snapshot) <= _FEW_CELL_ROWS and snapshot.columns.is_unique
        self.cells = snapshot.to_numpy(dtype=object) if few else None
        self.at = {name: j for j, name in enumerate(snapshot.columns)} if few else None

    def column(self, name: str) -> np.ndarray | None:
        if name not in self.columns and self.cells is not None:
            at = self.at.get(name)  # type: ignore[union-attr]
            self.columns[name] = None if at is None else self.cells[:, at]
        if name not in self.columns:
            try:
                at = self.snapshot.columns.get_loc(name)
            except KeyError:
                at = -1
            if not isinstance(at, int):  # a repeated column name: its first column
                at = int(self.snapshot.columns.get_indexer_for([name])[0])
            if at < 0:
                self.columns[name] = None
            else:
                column = self.snapshot.iloc[:, at]
                if len(self.wanted) != len(column):  # some rows of a larger snapshot
                    column = column.iloc[self.wanted]
                # as DataFrame.to_numpy(dtype=object) gives it: floats, category values, NA
                self.columns[name] = column.to_numpy(dtype=object)
        return self.columns[name]


class SnapshotRow(Mapping[str, Any]):
    """One snapshot row read lazily: ``row.get(feature)`` converts only the columns asked for."""

    def __init__(self, cells: _Cells, pos: int) -> None:
        self._cells, self._k = cells, cells.where[pos]

    def __getitem__(self, name: str) -> Any:
        column = self._cells.column(name)
        if column is None:
            raise KeyError(name)
        return column[self._k]

    def __iter__(self) -> Any:
        return iter(self._cells.snapshot.columns)

    def __len__(self) -> int:
        return len(self._cells.snapshot.columns)


def row_dicts(snapshot: pd.DataFrame, positions: np.ndarray) -> dict[int, Mapping[str, Any]]:
    """Snapshot rows at ``positions`` as mappings feature -> value, each row once.

    The values are those of ``snapshot.to_numpy(dtype=object)``, converted a column at a time
    and only for the columns the sentences read (a lead feature, the usual purchase gap).
    """
    wanted = sorted(set(np.asarray(positions).tolist()))
    cells = _Cells(snapshot, wanted)
    return {pos: SnapshotRow(cells, pos) for pos in wanted}


RowsOf = Callable[[np.ndarray], Mapping[int, Mapping[str, Any]]]


def _word(
    chosen: _Chosen, features: list[str], rows_of: RowsOf, reference: Mapping[str, float], lang: str,
    labels: Mapping[str, str] | None, currency: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentence, shown value and "reads like the median" flag of each candidate, worded once per case.

    ``rows_of(positions)`` gives the rows (feature -> value) of those customer positions.
    """
    from churnlens.features.catalog import reason_arguments, sentence

    n = len(chosen.rows)
    texts = np.empty(n, dtype=object)
    shown = np.empty(n, dtype=object)
    same = np.zeros(n, dtype=bool)
    if n == 0:
        return texts, shown, same
    rows = rows_of(chosen.rows)
    cache: dict[tuple[str, Any, Any], tuple[str | None, str | None, bool]] = {}
    for i, (pos, j) in enumerate(zip(chosen.rows.tolist(), chosen.feature.tolist(), strict=True)):
        name = features[j]
        row = rows[pos]
        case = (name, row.get(name), row.get("purchase_gap_mean_days") if name == "days_since_last_purchase" else None)
        hit = cache.get(case)
        if hit is None:
            args = reason_arguments(name, row, lang, reference, labels=labels, currency=currency)
            if args is None:
                hit = cache[case] = (None, None, True)
            else:
                hit = cache[case] = (sentence(name, args, lang), args["value"], bool(args["same_as_reference"]))
        texts[i], shown[i], same[i] = hit
    return texts, shown, same


@dataclass(frozen=True)
class ReasonArrays:
    """The reasons of explained rows as arrays, one entry per reason, rows in input order then rank.

    What :func:`top_reasons` puts in a frame; the HTTP API reads it directly (no frame for a
    handful of customers). ``row`` is the customer's position among the explained rows.
    """

    row: np.ndarray
    rank: np.ndarray
    concept: np.ndarray  # names (object)
    feature: np.ndarray  # names (object)
    value: np.ndarray  # the feature's value (float; NaN for categories)
    value_label: np.ndarray  # the value as shown (object)
    contribution: np.ndarray  # the concept's log-odds
    effect: np.ndarray  # its change of churn probability
    text: np.ndarray  # the sentence (object)
    hidden: int

    def __len__(self) -> int:
        return len(self.row)


def reason_arrays(
    model: ChurnModel,
    matrix: np.ndarray,
    contributions: np.ndarray,
    rows_of: RowsOf,
    *,
    n: int = 3,
    lang: str = "en",
    reference: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
    currency: str = "EUR",
) -> ReasonArrays:
    """The top ``n`` reasons of rows from their model matrix and exact contributions.

    The core of :func:`top_reasons` (see there for what a reason is).

    Parameters
    ----------
    model : ChurnModel
    matrix : ndarray
        ``model.matrix`` of the rows.
    contributions : ndarray
        ``model.contributions_of_matrix(matrix)`` (last column the base value).
    rows_of : callable
        Positions -> the rows at those positions as mappings feature -> value (the snapshot
        row: the sentences read the shown value and, for recency, the usual purchase gap).
    n, lang, reference, labels, currency
        See :func:`top_reasons`.

    Returns
    -------
    ReasonArrays
    """
    from churnlens.i18n import check_lang

    check_lang(lang)
    if int(n) != n or n < 1:
        raise InputError(f"the number of reasons must be a whole number >= 1, got {n}")
    concepts = concept_map(model)
    features = model.features
    if reference is None:
        reference = reference_medians(model)
    width = len(features)
    values = np.asarray(contributions[:, :width], dtype="float64")
    base = np.asarray(contributions[:, width], dtype="float64")
    chosen = _choose(values, base, matrix, concepts, model.calibrator.transform, int(n) + _SPARE)
    texts, shown, same = _word(chosen, features, rows_of, reference, lang, labels, currency)
    usable = ~same & pd.notna(texts)
    # rank of the usable candidates of each customer (candidates come grouped by customer,
    # strongest first): a running count of usable ones restarting at each customer
    count = np.cumsum(usable)
    first = np.flatnonzero(np.r_[True, chosen.rows[1:] != chosen.rows[:-1]]) if len(usable) else np.zeros(0, int)
    before = np.repeat(count[first] - usable[first], np.diff(np.r_[first, len(usable)]))
    rank = np.where(usable, count - before, 0).astype(np.int64)
    keep = usable & (rank >= 1) & (rank <= int(n))
    hidden = chosen.hidden + int((same & ~pd.isna(texts)).sum())
    numbers = matrix[chosen.rows[keep], chosen.feature[keep]]
    return ReasonArrays(
        row=chosen.rows[keep],
        rank=rank[keep],
        concept=np.asarray(concepts.concepts, dtype=object)[chosen.concept[keep]],
        feature=np.asarray(features, dtype=object)[chosen.feature[keep]],
        value=np.where(concepts.categorical[chosen.feature[keep]], np.nan, numbers),
        value_label=shown[keep],
        contribution=chosen.contribution[keep],
        effect=chosen.effect[keep],
        text=texts[keep],
        hidden=hidden,
    )


def top_reasons(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    *,
    n: int = 3,
    lang: str = "en",
    reference: Mapping[str, float] | None = None,
    contributions: pd.DataFrame | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    matrix: np.ndarray | None = None,
    labels: Mapping[str, str] | None = None,
    currency: str = "EUR",
) -> pd.DataFrame:
    """The top ``n`` reasons per customer with their sentences, as a long frame.

    Parameters
    ----------
    model : ChurnModel
    snapshot : DataFrame
        Customers to explain (index customer_id) with at least the model's features.
    n : int
        Reasons per customer (fewer when fewer concepts qualify).
    lang : {"en", "fr"}
    reference : mapping, optional
        The median customer's value per feature; default the training medians.
    contributions : DataFrame, optional
        Precomputed :func:`shap_contributions` for ``snapshot``.
    chunk_size, progress
        See :func:`shap_contributions`.
    matrix : ndarray, optional
        ``model.matrix(snapshot)`` if already computed.
    labels : mapping, optional
        Display labels of attribute names and category values in ``lang``.
    currency : str
        ISO code of amounts.

    Returns
    -------
    DataFrame
        Columns customer_id, rank, concept, feature (the one the sentence is about), value
        (float, NaN for categories), value_label (as shown), contribution (the concept's
        log-odds), effect (its change of churn probability, see :func:`probability_effects`),
        text. ``attrs["hidden"]`` counts the concepts that raised a customer's risk but
        were not reasons (no feature on the risky side of the median customer).
    """
    from churnlens.i18n import check_lang

    check_lang(lang)
    if int(n) != n or n < 1:
        raise InputError(f"the number of reasons must be a whole number >= 1, got {n}")
    if matrix is None:
        matrix = model.matrix(snapshot)
    if contributions is None:
        contributions = shap_contributions(model, snapshot, chunk_size=chunk_size, progress=progress, matrix=matrix)
    contrib = contributions[model.features + ["base_value"]].to_numpy(dtype="float64")
    found = reason_arrays(
        model, matrix, contrib, lambda positions: row_dicts(snapshot, positions), n=n, lang=lang,
        reference=reference, labels=labels, currency=currency,
    )  # fmt: skip
    ids = np.asarray(_customer_ids(contributions.index), dtype=object)
    out = pd.DataFrame(
        {
            "customer_id": pd.array(ids[found.row], dtype="string"),
            "rank": found.rank,
            "concept": pd.array(found.concept, dtype="string"),
            "feature": pd.array(found.feature, dtype="string"),
            "value": found.value,
            "value_label": pd.array(found.value_label, dtype="string"),
            "contribution": found.contribution,
            "effect": found.effect,
            "text": pd.array(found.text, dtype="string"),
        }
    )
    out = out[REASON_COLUMNS]
    out.attrs["hidden"] = found.hidden
    return out


def reasons_wide(reasons: pd.DataFrame, n: int) -> pd.DataFrame:
    """Sentences as columns ``reason_1..reason_n`` indexed by customer_id (missing: NA)."""
    columns = [f"reason_{i}" for i in range(1, n + 1)]
    if reasons.empty:
        return pd.DataFrame(columns=columns, dtype="string").rename_axis("customer_id")
    wide = reasons.pivot(index="customer_id", columns="rank", values="text")
    wide = wide.reindex(columns=range(1, n + 1))
    wide.columns = columns
    return wide.astype("string")
