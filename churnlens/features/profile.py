"""Profile features: tenure and the customer's static attributes.

Tenure runs from the earlier of the sign-up date (when before the cutoff) and the first
purchase before the cutoff; rows are the customers with a purchase before the cutoff (a
superset of the active ones). Every other column of ``customers`` becomes ``attr_<col>``:
text as a pandas categorical, numbers and flags as float64. Date columns are skipped.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.features.kernels import (
    US_PER_DAY,
    FeatureBlock,
    FloatColumns,
    normalize_cutoff,
    segments_for,
    shared_value,
)
from churnlens.features.kernels import positions as customer_positions
from churnlens.features.purchases import purchase_rhythm_columns

FAMILY = "profile"
_RESERVED = ("customer_id", "signup_at")


def attribute_columns(tables: Tables) -> tuple[list[str], list[str]]:
    """(text columns, numeric columns) of ``customers`` that become ``attr_<col>`` features."""
    customers = tables.customers
    if customers is None:
        return [], []
    text, numeric = shared_value(customers, "attribute_columns", lambda: _attributes_of(customers))
    return list(text), list(numeric)


def _attributes_of(customers: pd.DataFrame) -> tuple[tuple[str, ...], tuple[str, ...]]:
    kinds = tuple(zip(customers.columns, customers.dtypes, strict=True))
    try:
        return _attribute_kinds(kinds)
    except TypeError:  # an unhashable column name or dtype: not cached
        return _attribute_kinds.__wrapped__(kinds)


@functools.lru_cache(maxsize=64)
def _attribute_kinds(kinds: tuple[tuple[str, object], ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Text and numeric attribute columns of (column, dtype) pairs: the few shapes of a customers
    table are classified once, not per request."""
    text, numeric = [], []
    for col, dtype in kinds:
        if col in _RESERVED:
            continue
        if ptypes.is_bool_dtype(dtype) or (
            ptypes.is_numeric_dtype(dtype) and not ptypes.is_datetime64_any_dtype(dtype)
        ):
            numeric.append(col)
        elif ptypes.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.DatetimeTZDtype):
            continue
        else:
            text.append(col)
    return tuple(text), tuple(numeric)


def profile_feature_names(tables: Tables, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """Names of the profile features: ``tenure_days`` then ``attr_<col>`` in table order."""
    text, numeric = attribute_columns(tables)
    attrs = set(text) | set(numeric)
    cols = [] if tables.customers is None else [c for c in tables.customers.columns if c in attrs]
    return ["tenure_days"] + [f"attr_{c}" for c in cols]


def build_profile_features(
    tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Profile features of every customer with a purchase before the cutoff.

    Parameters
    ----------
    tables : Tables
        Validated tables (``purchases`` for the first purchase, ``customers`` if present).
    cutoff : Timestamp or str
        Exclusive: a sign-up at or after the cutoff is ignored.
    config : FeatureConfig

    Returns
    -------
    DataFrame
        Indexed by customer_id; text attributes as ``string`` (the snapshot makes them
        categorical), the rest float64.
    """
    return profile_block(tables, cutoff, config).frame()


def profile_block(tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()) -> FeatureBlock:
    """:func:`build_profile_features` before it becomes a frame.

    Column by column on the customers' arrays (no row selection of the customers frame):
    a customer scored alone pays a few array operations per attribute, not a frame's.
    """
    cutoff = normalize_cutoff(cutoff)
    segs = segments_for(tables.purchases, cutoff)
    rhythm = purchase_rhythm_columns(tables.purchases, segs)
    bought = rhythm["n_purchases"] > 0  # the customers of purchase_rhythm
    every = bool(bought.all())
    index = segs.index if every else segs.index[bought]
    start = rhythm["first_us"] if every else rhythm["first_us"][bought]
    cutoff_us = float(pd.Timestamp(cutoff).as_unit("us").to_datetime64().astype("int64"))
    customers = tables.customers
    text, numeric = attribute_columns(tables)
    names = profile_feature_names(tables, config)
    out = FloatColumns(["tenure_days"] + [c for c in names[1:] if c[5:] in numeric], index)
    others: dict[str, object] = {}
    if customers is not None:
        if not customers["customer_id"].is_unique:  # validated tables have one row per customer
            customers = customers.drop_duplicates("customer_id", keep="last")
        ids = customers["customer_id"]
        positions = customer_positions(index, pd.Index(ids if ids.dtype == "string" else ids.astype("string")))
        found = positions >= 0
        rows = np.where(found, positions, 0) if len(customers) else None  # None: nobody has attributes
        if "signup_at" in customers.columns and rows is not None:
            signup = customers["signup_at"].to_numpy(dtype="datetime64[us]")[rows]
            signup_us = signup.view("int64").astype("float64")
            usable = found & ~np.isnat(signup) & (signup_us < cutoff_us)
            start = np.where(usable, np.minimum(start, signup_us), start)
        for col in names[1:]:
            raw = customers[col[5:]]
            if col[5:] in numeric:
                if rows is None:
                    out[col] = np.nan
                    continue
                if raw.dtype == np.float64:  # what astype("Float64") would give, without the copy
                    values = raw.to_numpy()[rows]
                else:
                    values = raw.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)[rows]
                out[col] = np.where(found, values, np.nan)
            else:
                values = raw.array if raw.dtype == "string" else pd.array(raw.astype("string").array, dtype="string")
                others[col] = values.take(np.where(found, positions, -1), allow_fill=True)
    out["tenure_days"] = (cutoff_us - start) / US_PER_DAY
    return FeatureBlock(out, names, others)
