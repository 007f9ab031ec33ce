"""Exact SHAP contributions of the LightGBM model and the top reasons as sentences.

Contributions come from LightGBM's own TreeSHAP (``Booster.predict(pred_contrib=True)``):
exact, identical to ``shap.TreeExplainer`` on LightGBM models (which calls it itself) and
measured fastest here (``benchmarks/scoring.py``). They are in log-odds: per customer the
``base_value`` plus all feature contributions equals the model's raw margin.

Reasons are picked per customer with ``argpartition`` over the contribution matrix (no
per-customer loop) and worded by the feature catalog (:func:`render_reason`), once per
distinct (feature, displayed values) combination rather than once per customer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from churnlens.errors import InputError
from churnlens.model import ChurnModel

Progress = Callable[[int, int], None]
Renderer = Callable[[str, Mapping[str, Any], str, Mapping[str, float] | None], str]

#: Rows per ``pred_contrib`` call: bounds memory (rows x features x 8 bytes) and paces progress.
DEFAULT_CHUNK = 20_000
#: Up to this many reasons, rows are worded one by one (cheaper than grouping a few rows).
SMALL_INPUT = 64
REASON_COLUMNS = ["customer_id", "rank", "feature", "value", "value_label", "contribution", "text"]
_FIELD = re.compile(r"\{([A-Za-z0-9_]+)\}")


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
    prepared: pd.DataFrame | None = None,
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
    prepared : DataFrame, optional
        ``model.prepare(snapshot)`` if already computed.

    Returns
    -------
    DataFrame
        One column per model feature plus ``base_value``; rows sum to the raw margin.
    """
    X = model.prepare(snapshot) if prepared is None else prepared
    n = len(X)
    out = np.empty((n, len(model.features) + 1), dtype="float64")
    step = max(int(chunk_size), 1)
    for start in range(0, n, step):  # LightGBM refuses empty frames: no call when n == 0
        stop = min(start + step, n)
        out[start:stop] = model.contributions_of_prepared(X.iloc[start:stop])
        if progress is not None:
            progress(stop, n)
    if n == 0 and progress is not None:
        progress(0, 0)
    return pd.DataFrame(out, index=snapshot.index, columns=model.features + ["base_value"])


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
    reference = model.metadata.get("reference", {})
    return {
        name: float(stats["median"])
        for name, stats in reference.items()
        if isinstance(stats, Mapping) and stats.get("median") is not None and name in model.features
    }


def _default_renderer() -> Renderer:
    from churnlens.features.catalog import render_reason

    return render_reason


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def _display_one(value: Any, unit: str, lang: str) -> str | None:
    """What a sentence shows of one value: formatted text (None if missing), or the flag state."""
    from churnlens.features.catalog import format_value

    if _is_missing(value):
        return None
    if unit == "flag":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return None if np.isnan(number) else ("1" if number >= 0.5 else "0")
    try:
        return format_value(value, unit, lang)
    except (TypeError, ValueError, OverflowError):
        return None


def _display_keys(values: pd.Series, unit: str, lang: str) -> np.ndarray:
    """:func:`_display_one` of each value, formatting each distinct value once."""
    raw = values.to_numpy(dtype=object)
    if unit == "flag":
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        return np.where(np.isnan(x), None, np.where(x >= 0.5, "1", "0")).astype(object)
    shown = {u: _display_one(u, unit, lang) for u in pd.unique(raw) if not _is_missing(u)}
    mapped = pd.Series(raw, dtype=object).map(shown)
    return mapped.where(mapped.notna(), None).to_numpy(dtype=object)


def _template_fields(feature: str, lang: str, columns: pd.Index) -> tuple[str, list[str]]:
    from churnlens.features.catalog import spec_for

    try:
        spec = spec_for(feature)
    except KeyError:
        return "number", [feature]
    others = [
        f for f in dict.fromkeys(_FIELD.findall(spec.reason_template(lang))) if f not in ("value", "ref")
    ]
    return spec.unit, [feature] + [f for f in others if f in columns and f != feature]


def _field_unit(field: str) -> str:
    from churnlens.features.catalog import spec_for

    try:
        return spec_for(field).unit
    except KeyError:
        return "number"


def _row_dicts(snapshot: pd.DataFrame, positions: np.ndarray) -> dict[int, dict[str, Any]]:
    """Snapshot rows at ``positions`` as dicts (feature -> value), each row once."""
    wanted = sorted(set(positions.tolist()))
    values = snapshot.iloc[wanted].to_numpy(dtype=object)  # one block copy (to_dict goes per cell)
    columns = snapshot.columns.tolist()
    return {pos: dict(zip(columns, row, strict=True)) for pos, row in zip(wanted, values, strict=True)}


def render_texts(
    reasons: pd.DataFrame,
    snapshot: pd.DataFrame,
    *,
    lang: str = "en",
    reference: Mapping[str, float] | None = None,
    renderer: Renderer | None = None,
) -> np.ndarray:
    """Sentences for the reasons of :func:`select_reasons`, one render per distinct case.

    Rows sharing the feature and the displayed values of every field its template uses
    get the same sentence, so each such group is rendered once (by ``renderer``, the
    catalog's :func:`render_reason` by default).

    Returns
    -------
    ndarray of str
        Aligned with ``reasons`` rows.
    """
    render = renderer or _default_renderer()
    texts = np.empty(len(reasons), dtype=object)
    if len(reasons) == 0:
        return texts
    positions = reasons["_row"].to_numpy()
    if len(reasons) <= SMALL_INPUT:  # a few customers (the API): no grouping machinery
        rows = _row_dicts(snapshot, positions)
        for i, (feature, pos) in enumerate(zip(reasons["feature"].tolist(), positions.tolist(), strict=True)):
            texts[i] = render(str(feature), rows[pos], lang, reference)
        return texts
    groups = pd.Series(np.arange(len(reasons))).groupby(reasons["feature"].to_numpy(), sort=False)
    for feature, group in groups:
        at = group.to_numpy()
        unit, fields = _template_fields(str(feature), lang, snapshot.columns)
        rows = snapshot.iloc[positions[at]][fields]
        keys = pd.DataFrame(
            {f: _display_keys(rows[f], unit if f == feature else _field_unit(f), lang) for f in fields}
        ).fillna("\x00missing")
        codes = keys.groupby(fields, sort=False, dropna=False).ngroup().to_numpy()
        first = pd.Series(np.arange(len(at))).groupby(codes).first()
        sentences = {}
        for code, pos in first.items():
            raw = rows.iloc[int(pos)]
            sentences[code] = render(str(feature), raw.to_dict(), lang, reference)
        texts[at] = pd.Series(codes).map(sentences).to_numpy()
    return texts


def _values(
    reasons: pd.DataFrame, snapshot: pd.DataFrame, prepared: pd.DataFrame, lang: str
) -> tuple[np.ndarray, np.ndarray]:
    """Numeric value (NaN for categories) and the value as a sentence shows it, per reason."""
    numeric = np.full(len(reasons), np.nan)
    labels = np.empty(len(reasons), dtype=object)
    positions = reasons["_row"].to_numpy()
    if len(reasons) <= SMALL_INPUT:
        rows = _row_dicts(snapshot, positions)
        categorical = {n for n, dtype in prepared.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)}
        numbers = prepared.iloc[np.unique(positions)]
        for i, (feature, pos) in enumerate(zip(reasons["feature"].tolist(), positions.tolist(), strict=True)):
            name = str(feature)
            if name not in categorical:
                numeric[i] = float(numbers.at[prepared.index[pos], name])
            labels[i] = _display_one(rows[pos][name], _field_unit(name), lang)
        return numeric, labels
    groups = pd.Series(np.arange(len(reasons))).groupby(reasons["feature"].to_numpy(), sort=False)
    for feature, group in groups:
        at = group.to_numpy()
        name = str(feature)
        if not isinstance(prepared[name].dtype, pd.CategoricalDtype):
            numeric[at] = prepared[name].to_numpy(dtype="float64")[positions[at]]
        labels[at] = _display_keys(snapshot[name].iloc[positions[at]], _field_unit(name), lang)
    return numeric, labels


def top_reasons(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    *,
    n: int = 3,
    lang: str = "en",
    only_risk_up: bool = True,
    reference: Mapping[str, float] | None = None,
    contributions: pd.DataFrame | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    renderer: Renderer | None = None,
    prepared: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The top ``n`` reasons per customer with their sentences, as a long frame.

    Parameters
    ----------
    model : ChurnModel
    snapshot : DataFrame
        Customers to explain (index customer_id) with at least the model's features.
    n : int
        Reasons per customer.
    lang : {"en", "fr"}
    only_risk_up : bool
        Only contributions that push churn risk up (> 0).
    reference : mapping, optional
        Typical value per feature for the sentences; default the training medians
        (``metadata["reference"][feature]["median"]``).
    contributions : DataFrame, optional
        Precomputed :func:`shap_contributions` for ``snapshot``.
    chunk_size, progress
        See :func:`shap_contributions`.
    renderer : callable, optional
        ``render(feature, row, lang, reference) -> str``; default the catalog's.
    prepared : DataFrame, optional
        ``model.prepare(snapshot)`` if already computed.

    Returns
    -------
    DataFrame
        Columns customer_id, rank, feature, value (float, NaN for categories),
        value_label (as shown), contribution (log-odds), text.
    """
    if lang not in ("en", "fr"):
        raise InputError(f"language must be en or fr, got {lang!r}")
    if prepared is None:
        prepared = model.prepare(snapshot)
    if contributions is None:
        contributions = shap_contributions(
            model, snapshot, chunk_size=chunk_size, progress=progress, prepared=prepared
        )
    reasons = select_reasons(contributions, n=n, only_risk_up=only_risk_up)
    if reference is None:
        reference = reference_medians(model)
    numeric, labels = _values(reasons, snapshot, prepared, lang)
    texts = render_texts(reasons, snapshot, lang=lang, reference=reference, renderer=renderer)
    out = reasons.drop(columns="_row").assign(
        value=numeric, value_label=pd.array(labels, dtype="string"), text=pd.array(texts, dtype="string")
    )
    return out[REASON_COLUMNS].reset_index(drop=True)


def reasons_wide(reasons: pd.DataFrame, n: int) -> pd.DataFrame:
    """Sentences as columns ``reason_1..reason_n`` indexed by customer_id (missing: NA)."""
    columns = [f"reason_{i}" for i in range(1, n + 1)]
    if reasons.empty:
        return pd.DataFrame(columns=columns, dtype="string").rename_axis("customer_id")
    wide = reasons.pivot(index="customer_id", columns="rank", values="text")
    wide = wide.reindex(columns=range(1, n + 1))
    wide.columns = columns
    return wide.astype("string")
