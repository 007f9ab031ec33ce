"""Point-in-time snapshots: one row per active customer at a cutoff (DESIGN §3).

One code path for training and scoring: :func:`build_snapshot` is called for past
cutoffs (training sets) and for today's (scoring) alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.data.validate import category_dtype
from churnlens.features.btyd import btyd_block, btyd_feature_names
from churnlens.features.catalog import FeatureSpec, feature_catalog
from churnlens.features.contacts import contacts_block, contacts_feature_names
from churnlens.features.kernels import (
    US_PER_DAY,
    FeatureBlock,
    FloatColumns,
    customer_index,
    normalize_cutoff,
    positions,
    shared_segments,
)
from churnlens.features.profile import attribute_columns, profile_block, profile_feature_names
from churnlens.features.program import program_block, program_feature_names
from churnlens.features.purchases import purchase_rhythm, purchases_block, purchases_feature_names
from churnlens.features.support import support_block, support_feature_names

Builder = Callable[[Tables, pd.Timestamp, FeatureConfig], FeatureBlock]
Names = Callable[[Tables, FeatureConfig], list[str]]

#: Families in snapshot column order: (name, builder, names of the columns it gives). Each builder
#: is what the family's ``build_*_features`` computes, before it becomes a frame.
FAMILY_BUILDERS: tuple[tuple[str, Builder, Names], ...] = (
    ("purchases", purchases_block, purchases_feature_names),
    ("btyd", btyd_block, btyd_feature_names),
    ("program", program_block, program_feature_names),
    ("support", support_block, support_feature_names),
    ("contacts", contacts_block, contacts_feature_names),
    ("profile", profile_block, profile_feature_names),
)


def catalog_for(tables: Tables, config: FeatureConfig = FeatureConfig()) -> dict[str, FeatureSpec]:
    """The feature catalog with entries for these tables' static attributes too."""
    text, numeric = attribute_columns(tables)
    try:
        return dict(_catalog(config, tuple(text), tuple(numeric)))
    except TypeError:  # a configuration that cannot be a cache key: not cached
        return feature_catalog(config, extra_categoricals=text, extra_numerics=numeric)


@functools.lru_cache(maxsize=64)
def _catalog(config: FeatureConfig, text: tuple[str, ...], numeric: tuple[str, ...]) -> dict[str, FeatureSpec]:
    """:func:`feature_catalog` of a configuration and attribute columns, expanded once (a served
    model asks for the same one on every request). Callers get a copy."""
    return feature_catalog(config, extra_categoricals=text, extra_numerics=numeric)


def snapshot_columns(tables: Tables, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """The columns :func:`build_snapshot` gives for these tables, in order."""
    return [name for _, _, names in FAMILY_BUILDERS for name in names(tables, config)]


def categorical_columns(tables: Tables, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """The snapshot columns that are pandas categoricals."""
    catalog = catalog_for(tables, config)
    return [c for c in snapshot_columns(tables, config) if catalog[c].unit == "category"]


def _without_cancelled(customers: pd.Index, tables: Tables, cutoff: pd.Timestamp) -> pd.Index:
    if tables.cancellations is not None and len(tables.cancellations):
        c = tables.cancellations
        gone = customer_index(c.loc[(c["timestamp"] < cutoff).to_numpy(dtype=bool), "customer_id"])
        customers = customers[positions(customers, gone) < 0]
    customers.name = "customer_id"
    return customers


def _active_from_purchases(purchases: FeatureBlock, config: FeatureConfig) -> pd.Index:
    """Customers whose last purchase is within the active window (exact: days are us / 86400e6)."""
    recent = purchases.numbers["days_since_last_purchase"] <= float(config.active_window_days)
    return purchases.index[recent]


def active_customers(
    tables: Tables, cutoff: str | pd.Timestamp, config: FeatureConfig = FeatureConfig()
) -> pd.Index:
    """Customers active at the cutoff.

    Active: at least one purchase (``amount >= 0``) in ``[cutoff - active_window_days,
    cutoff)`` and no cancellation before the cutoff.

    Returns
    -------
    Index
        Sorted string Index named ``customer_id``.
    """
    cutoff = normalize_cutoff(cutoff)
    rhythm = purchase_rhythm(tables.purchases, cutoff)
    cutoff_us = float(np.datetime64(cutoff.to_datetime64(), "us").astype("int64"))
    days = FloatColumns(["days_since_last_purchase"], rhythm.index)
    days["days_since_last_purchase"] = (cutoff_us - rhythm["last_us"].to_numpy()) / US_PER_DAY
    return _without_cancelled(_active_from_purchases(FeatureBlock(days, days.names, {}), config), tables, cutoff)


#: Below this many rows a categorical is coded in Python: pandas' fixed cost per call, not the
#: values, is what coding a few values costs (a customer scored alone).
_FEW_ROWS = 4096


def _categorical(values: object) -> pd.Categorical:
    """A snapshot categorical: the values as text, levels the values present, sorted."""
    if isinstance(getattr(values, "dtype", None), pd.StringDtype) and len(values) <= _FEW_ROWS:
        items = [None if v is pd.NA else v for v in values]
        levels = sorted({v for v in items if v is not None})
        code = {v: i for i, v in enumerate(levels)}
        codes = np.fromiter((-1 if v is None else code[v] for v in items), dtype=np.int64, count=len(items))
        return pd.Categorical.from_codes(codes, dtype=category_dtype(levels))
    out = pd.Categorical(pd.Series(values).astype("string"))
    if list(out.categories) != sorted(out.categories):
        out = out.reorder_categories(sorted(out.categories))
    return out


class _Assembler:
    """The snapshot, filled family by family: numbers in one float64 block, then categoricals.

    Each family frame is aligned to the active customers column by column straight into
    the block (missing customers get NaN, then the catalog's fill value), so no intermediate
    aligned or concatenated copy of the whole snapshot is ever made.
    """

    def __init__(self, active: pd.Index, columns: list[str], catalog: dict[str, FeatureSpec]) -> None:
        self.active, self.columns, self.catalog = active, columns, catalog
        self.numbers = FloatColumns([c for c in columns if catalog[c].unit != "category"], active)
        self.categories: dict[str, pd.Categorical] = {}

    def add(self, part: FeatureBlock) -> None:
        pos = None if part.index.equals(self.active) else positions(self.active, part.index)
        absent = None if pos is None else pos < 0
        for name in part.columns:
            spec = self.catalog[name]
            if spec.unit == "category":
                values = part.others[name]
                self.categories[name] = _categorical(
                    values if pos is None else values.take(pos, allow_fill=True)
                )
                continue
            values = part.numbers[name]
            row = self.numbers[name]
            if pos is None:
                row[:] = values
            elif len(values):
                np.take(values, pos, out=row, mode="clip")
                row[absent] = np.nan
            else:
                row[:] = np.nan
            if spec.fill_value == spec.fill_value:  # not NaN
                row[np.isnan(row)] = spec.fill_value

    def frame(self) -> pd.DataFrame:
        if len(self.active) <= _FEW_ROWS and self.categories:
            # a few rows: one frame from the columns (inserting each categorical into the frame of
            # numbers costs more); for many the block is used as is (no copy of it)
            return pd.DataFrame(
                {c: self.categories[c] if c in self.categories else self.numbers[c] for c in self.columns},
                index=self.active,
            )
        return self.numbers.frame(self.columns, **self.categories)


def build_snapshot(
    tables: Tables, cutoff: str | pd.Timestamp, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Features of every active customer at a cutoff, from events strictly before it.

    Parameters
    ----------
    tables : Tables
        Validated tables; absent optional tables drop their family.
    cutoff : str or Timestamp
        Exclusive cutoff, normalised to naive UTC.
    config : FeatureConfig

    Returns
    -------
    DataFrame
        One row per active customer (index ``customer_id``, string dtype, sorted); columns
        :func:`snapshot_columns` (purchases, btyd, program, support, contacts, profile, catalog order);
        numbers float64 (counts 0 when a customer has no events in a family, NaN where
        undefined), categoricals with sorted levels.

    Examples
    --------
    >>> snap = build_snapshot(tables, "2024-06-01")  # doctest: +SKIP
    """
    cutoff = normalize_cutoff(cutoff)
    assembler: _Assembler | None = None
    with shared_segments():
        catalog = catalog_for(tables, config)
        families = [(family, builder, names(tables, config)) for family, builder, names in FAMILY_BUILDERS]
        families = [(family, builder, names) for family, builder, names in families if names]
        columns = [c for _, _, names in families for c in names]
        # purchases first: they decide who is active; each family is then built, copied into
        # the snapshot and dropped before the next one is built
        families.sort(key=lambda f: f[0] != "purchases")
        for _family, builder, names in families:
            part = builder(tables, cutoff, config)
            if part.columns != names:  # a builder and its names disagree: a bug
                raise AssertionError(f"{_family} gave {part.columns}, expected {names}")
            if assembler is None:
                active = _without_cancelled(_active_from_purchases(part, config), tables, cutoff)
                assembler = _Assembler(active, columns, catalog)
            assembler.add(part)
            del part
    assert assembler is not None  # purchases always give columns
    return assembler.frame()
