"""Profile features: tenure and the customer's static attributes.

Tenure runs from the earlier of the sign-up date (when before the cutoff) and the first
purchase before the cutoff; rows are the customers with a purchase before the cutoff (a
superset of the active ones). Every other column of ``customers`` becomes ``attr_<col>``:
text as a pandas categorical, numbers and flags as float64. Date columns are skipped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.features.kernels import US_PER_DAY, normalize_cutoff
from churnlens.features.kernels import positions as customer_positions
from churnlens.features.purchases import purchase_rhythm

FAMILY = "profile"
_RESERVED = ("customer_id", "signup_at")


def attribute_columns(tables: Tables) -> tuple[list[str], list[str]]:
    """(text columns, numeric columns) of ``customers`` that become ``attr_<col>`` features."""
    customers = tables.customers
    if customers is None:
        return [], []
    text, numeric = [], []
    for col, dtype in customers.dtypes.items():
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
    return text, numeric


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
    cutoff = normalize_cutoff(cutoff)
    first = purchase_rhythm(tables.purchases, cutoff)["first_us"]
    index = first.index
    start = first.to_numpy()
    cutoff_us = float(pd.Timestamp(cutoff).as_unit("us").to_datetime64().astype("int64"))
    customers = tables.customers
    _, numeric = attribute_columns(tables)
    attrs = None
    if customers is not None:
        if not customers["customer_id"].is_unique:  # validated tables have one row per customer
            customers = customers.drop_duplicates("customer_id", keep="last")
        positions = customer_positions(index, pd.Index(customers["customer_id"].astype("string")))
        found = positions >= 0
        if len(customers):
            attrs = customers.iloc[np.where(found, positions, 0)].reset_index(drop=True)
        else:
            attrs = customers.reset_index(drop=True).reindex(range(len(index)))
        if "signup_at" in customers.columns:
            signup = attrs["signup_at"].to_numpy(dtype="datetime64[us]")
            signup_us = signup.view("int64").astype("float64")
            usable = found & ~np.isnat(signup) & (signup_us < cutoff_us)
            start = np.where(usable, np.minimum(start, signup_us), start)
    out = pd.DataFrame({"tenure_days": (cutoff_us - start) / US_PER_DAY}, index=index)
    if attrs is not None:
        for col in profile_feature_names(tables, config)[1:]:
            raw = attrs[col[5:]]
            if col[5:] in numeric:
                values = raw.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
                out[col] = np.where(found, values, np.nan)
            else:
                out[col] = pd.array(raw.astype("string").array, dtype="string")
                if not found.all():
                    out.loc[~found, col] = pd.NA
    out.index.name = "customer_id"
    return out
