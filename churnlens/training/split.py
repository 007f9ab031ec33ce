"""Which cutoffs (and customers) each stage of a run uses: out-of-time splits, backtest origins,
customer-grouped folds, matured cutoffs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnlens.errors import InputError


@dataclass(frozen=True)
class OutOfTimeSplit:
    """Cutoffs of each part; the test cutoff is never used for fitting or early stopping."""

    train_cutoffs: tuple[pd.Timestamp, ...]
    validation_cutoff: pd.Timestamp
    test_cutoff: pd.Timestamp

    def part(self, training_set: pd.DataFrame, name: str) -> pd.DataFrame:
        """Rows of ``training_set`` (indexed by cutoff, customer_id) for ``train``, ``validation`` or ``test``."""
        cutoffs = training_set.index.get_level_values("cutoff")
        if name == "train":
            return training_set[cutoffs.isin(self.train_cutoffs)]
        if name == "validation":
            return training_set[cutoffs == self.validation_cutoff]
        if name == "test":
            return training_set[cutoffs == self.test_cutoff]
        raise ValueError(f"unknown split part {name!r}")


def _up_to(ordered: list[pd.Timestamp], test_cutoff: pd.Timestamp | None) -> list[pd.Timestamp]:
    """The cutoffs up to ``test_cutoff`` (all when None), which must be one of them."""
    if test_cutoff is None:
        return ordered
    test_cutoff = pd.Timestamp(test_cutoff)
    if test_cutoff not in ordered:
        raise InputError(
            f"test cutoff {test_cutoff.date()} is not one of the training cutoffs "
            f"({', '.join(str(c.date()) for c in ordered)})"
        )
    return [c for c in ordered if c <= test_cutoff]


def out_of_time_split(
    cutoffs: list[pd.Timestamp],
    *,
    horizon_days: int,
    purge: bool = True,
    test_cutoff: pd.Timestamp | None = None,
) -> OutOfTimeSplit:
    """Hold out the latest labelled cutoff as test and the one before as validation.

    Parameters
    ----------
    cutoffs : list of Timestamp
        Labelled cutoffs, any order.
    horizon_days : int
    purge : bool
        Keep every label window inside its own split (see :class:`TrainConfig`).
    test_cutoff : Timestamp, optional
        Use this cutoff as test instead of the latest; it must be one of ``cutoffs``.

    Returns
    -------
    OutOfTimeSplit
    """
    ordered = _up_to(sorted(pd.Timestamp(c) for c in cutoffs), test_cutoff)
    test = ordered[-1]
    horizon = pd.Timedelta(days=horizon_days)
    before_test = [c for c in ordered[:-1] if not purge or c + horizon <= test]
    if not before_test:
        raise InputError(
            f"no validation cutoff before the test cutoff {test.date()}: need more history "
            "(a shorter --horizon, a lower min_history_days, or --no-purge, whose test metrics flatter the model)"
        )
    validation = before_test[-1]
    train = [c for c in before_test[:-1] if not purge or c + horizon <= validation]
    if not train:
        raise InputError(
            f"no training cutoff before the validation cutoff {validation.date()}: need more history "
            "(a shorter --horizon, a lower min_history_days, or --no-purge, whose test metrics flatter the model)"
        )
    return OutOfTimeSplit(tuple(train), validation, test)


def backtest_origins(
    cutoffs: Sequence[pd.Timestamp],
    *,
    horizon_days: int,
    count: int,
    purge: bool = True,
    test_cutoff: pd.Timestamp | None = None,
) -> list[OutOfTimeSplit]:
    """Rolling-origin backtest: up to ``count`` out-of-time splits, one per test cutoff.

    The test cutoffs are the latest labelled cutoff (or ``test_cutoff``) and the cutoffs
    before it, one step apart, newest first; each keeps its own validation and training
    cutoffs as :func:`out_of_time_split` builds them. Test cutoffs too early for a split are
    skipped, so fewer than ``count`` origins come back when the history is short, and none
    when not even one fits.

    Parameters
    ----------
    cutoffs : sequence of Timestamp
        Labelled cutoffs, any order.
    horizon_days : int
    count : int
        Most origins wanted (at least 1).
    purge : bool
    test_cutoff : Timestamp, optional
        The latest origin's test cutoff; one of ``cutoffs``.

    Returns
    -------
    list of OutOfTimeSplit
        Oldest test cutoff first.
    """
    if count < 1:
        raise InputError(f"the backtest needs at least 1 origin, got {count}")
    ordered = _up_to(sorted({pd.Timestamp(c) for c in cutoffs}), test_cutoff)
    origins: list[OutOfTimeSplit] = []
    for test in reversed(ordered):
        if len(origins) == count:
            break
        try:
            origins.append(out_of_time_split(ordered, horizon_days=horizon_days, purge=purge, test_cutoff=test))
        except InputError:
            continue
    return origins[::-1]


def matured_cutoffs(cutoffs: Sequence[pd.Timestamp], *, horizon_days: int, as_of: pd.Timestamp) -> list[pd.Timestamp]:
    """The cutoffs whose whole label window ``[c, c + H)`` lies before ``as_of``, ascending."""
    horizon = pd.Timedelta(days=horizon_days)
    return sorted(pd.Timestamp(c) for c in cutoffs if pd.Timestamp(c) + horizon <= pd.Timestamp(as_of))


def customer_folds(customer_ids: pd.Index | np.ndarray, *, folds: int, seed: int) -> pd.Series:
    """A fold number (0 .. folds - 1) for each distinct customer: seeded, balanced, row-order free.

    The distinct ids are sorted, shuffled with ``seed`` and dealt out in turn, so the folds
    differ in size by at most one customer and depend only on the set of ids and the seed.

    Returns
    -------
    Series
        Fold per customer id (index: the sorted distinct ids).
    """
    if folds < 2:
        raise InputError(f"customer-grouped folds need at least 2 folds, got {folds}")
    ids = pd.Index(pd.unique(pd.Series(np.asarray(customer_ids, dtype=object)).astype("string"))).sort_values()
    if len(ids) < folds:
        raise InputError(f"{len(ids)} customers cannot be split into {folds} customer-grouped folds")
    order = np.random.default_rng(seed).permutation(len(ids))
    fold = np.empty(len(ids), dtype=np.int64)
    fold[order] = np.arange(len(ids)) % folds
    return pd.Series(fold, index=ids, name="fold")


def fold_of_rows(frame: pd.DataFrame, folds: pd.Series) -> np.ndarray:
    """The fold of each row of a training set (MultiIndex cutoff, customer_id)."""
    ids = frame.index.get_level_values("customer_id").astype("string")
    found = folds.reindex(ids).to_numpy()
    if pd.isna(found).any():
        raise ValueError("some training rows belong to customers without a fold")
    return found.astype(np.int64)
