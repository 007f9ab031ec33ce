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
    rows = []
    for name, ref in reference.items():
        if name not in frame.columns:
            continue
        if ref["kind"] == "numeric":
            x = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            actual = _numeric_shares(x, np.asarray(ref["edges"], dtype=float))
            value = psi(ref["shares"], actual)
        else:
            levels = list(ref["shares"])
            counts = frame[name].astype("string").fillna("<missing>").value_counts(normalize=True)
            expected = [ref["shares"][k] for k in levels] + [0.0]
            actual = [float(counts.get(k, 0.0)) for k in levels] + [float(counts[~counts.index.isin(levels)].sum())]
            value = psi(expected, actual)
        status = "major" if value > PSI_ALERT else "moderate" if value > PSI_WARN else "stable"
        rows.append({"feature": name, "psi": value, "status": status})
    result = pd.DataFrame(rows, columns=["feature", "psi", "status"])
    return result.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
