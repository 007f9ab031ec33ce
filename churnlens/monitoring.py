"""Reference statistics of a training snapshot and population stability (PSI) against them.

Training stores :func:`reference_statistics` in the model's metadata; serving compares each
scored snapshot with :func:`population_stability`. Both live here so the format has one owner.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Usual reading of PSI: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
PSI_WARN = 0.1
PSI_ALERT = 0.25
_EPS = 1e-4


def _numeric_reference(values: pd.Series, bins: int) -> dict[str, Any]:
    x = pd.to_numeric(values, errors="coerce").astype("float64")
    finite = x.dropna()
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
    return {
        "kind": "numeric",
        "median": float(finite.median()) if len(finite) else None,
        "mean": float(finite.mean()) if len(finite) else None,
        "edges": edges.tolist(),
        "shares": _numeric_shares(x, edges).tolist(),
    }


def _numeric_shares(x: pd.Series, edges: np.ndarray) -> np.ndarray:
    """Shares per bin: (-inf, e0], (e0, e1], ..., (ek, inf), then missing."""
    arr = x.to_numpy(dtype="float64", na_value=np.nan)
    missing = np.isnan(arr)
    idx = np.searchsorted(edges, arr[~missing], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, missing.sum())
    return counts / max(len(arr), 1)


def _categorical_reference(values: pd.Series) -> dict[str, Any]:
    shares = values.astype("string").fillna("<missing>").value_counts(normalize=True).sort_index()
    return {"kind": "categorical", "shares": {str(k): float(v) for k, v in shares.items()}}


def reference_statistics(frame: pd.DataFrame, *, bins: int = 10) -> dict[str, dict[str, Any]]:
    """Per-column reference: median/mean and decile bins (numeric) or level shares (categorical).

    Parameters
    ----------
    frame : DataFrame
        Training snapshot (features, optionally a ``churn_probability`` column).
    bins : int
        Quantile bins for numeric columns.

    Returns
    -------
    dict
        JSON-serialisable statistics by column name.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col.dtype):
            out[name] = _categorical_reference(col)
        else:
            out[name] = _numeric_reference(col, bins)
    return out


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two share vectors (same bins)."""
    e = np.clip(np.asarray(expected, dtype=float), _EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


#: Counts of one column in the reference bins: an array (numeric: bins then missing) or a
#: mapping level -> count (categorical). Counts of several partitions add up.
Counts = np.ndarray | dict[str, int]
MISSING = "<missing>"


def bin_counts(reference: dict[str, dict[str, Any]], frame: pd.DataFrame) -> dict[str, Counts]:
    """Counts of every referenced column of ``frame`` in its reference bins (or levels).

    Counts are mergeable: the counts of a whole base are the sums of its partitions' counts,
    so :func:`stability_from_counts` gives the same PSI however the base was split.
    """
    out: dict[str, Counts] = {}
    for name, ref in reference.items():
        if name not in frame.columns:
            continue
        if ref["kind"] == "numeric":
            x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            missing = np.isnan(x)
            edges = np.asarray(ref["edges"], dtype=float)
            counts = np.bincount(np.searchsorted(edges, x[~missing], side="left"), minlength=len(edges) + 1)
            out[name] = np.append(counts, missing.sum()).astype(np.int64)
        else:
            out[name] = _level_counts(frame[name])
    return out


def _level_counts(column: pd.Series) -> dict[str, int]:
    """Rows per level as text (missing: :data:`MISSING`), levels that occur only."""
    if isinstance(column.dtype, pd.CategoricalDtype):  # count the codes, name the few levels
        codes = column.cat.codes.to_numpy()
        counts = np.bincount(codes + 1, minlength=len(column.cat.categories) + 1)
        names = [MISSING, *column.cat.categories.astype("string").fillna(MISSING).tolist()]
        out: dict[str, int] = {}
        for level, n in zip(names, counts.tolist(), strict=True):
            if n:
                out[str(level)] = out.get(str(level), 0) + n
        return dict(sorted(out.items(), key=lambda item: -item[1]))  # most frequent first, as value_counts
    levels = column.astype("string").fillna(MISSING).value_counts()
    return {str(k): int(v) for k, v in levels.items()}


def add_counts(parts: list[dict[str, Counts]]) -> dict[str, Counts]:
    """The counts of the union of partitions (the sum of their :func:`bin_counts`)."""
    total: dict[str, Counts] = {}
    for part in parts:
        for name, counts in part.items():
            if isinstance(counts, dict):
                merged = dict(total.get(name, {}))
                for level, n in counts.items():
                    merged[level] = merged.get(level, 0) + int(n)
                total[name] = merged
            else:
                total[name] = total[name] + counts if name in total else np.asarray(counts).copy()
    return total


def stability_from_counts(reference: dict[str, dict[str, Any]], counts: dict[str, Counts], total: int) -> pd.DataFrame:
    """PSI of every column in ``counts`` against its reference, highest first.

    Parameters
    ----------
    reference : dict
        Output of :func:`reference_statistics` on the training snapshot.
    counts : dict
        :func:`bin_counts` of the scored rows (summed over partitions).
    total : int
        Rows counted.

    Returns
    -------
    DataFrame
        Columns feature, psi, status (stable / moderate / major).
    """
    rows = []
    for name, column in counts.items():
        ref = reference[name]
        if ref["kind"] == "numeric":
            value = psi(ref["shares"], np.asarray(column, dtype=float) / max(total, 1))
        else:
            levels = list(ref["shares"])
            shares = {k: v / max(total, 1) for k, v in column.items()}
            expected = [ref["shares"][k] for k in levels] + [0.0]
            actual = [float(shares.get(k, 0.0)) for k in levels] + [
                float(sum(v for k, v in shares.items() if k not in ref["shares"]))
            ]
            value = psi(expected, actual)
        status = "major" if value > PSI_ALERT else "moderate" if value > PSI_WARN else "stable"
        rows.append({"feature": name, "psi": value, "status": status})
    result = pd.DataFrame(rows, columns=["feature", "psi", "status"])
    return result.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def population_stability(reference: dict[str, dict[str, Any]], frame: pd.DataFrame) -> pd.DataFrame:
    """PSI of every referenced column present in ``frame``, highest first.

    Parameters
    ----------
    reference : dict
        Output of :func:`reference_statistics` on the training snapshot.
    frame : DataFrame
        Scored snapshot.

    Returns
    -------
    DataFrame
        Columns feature, psi, status (stable / moderate / major).
    """
    return stability_from_counts(reference, bin_counts(reference, frame), len(frame))
