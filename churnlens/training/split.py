"""Out-of-time split of a stacked training set into train, validation and test cutoffs."""

from __future__ import annotations

from dataclasses import dataclass

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
    ordered = sorted(pd.Timestamp(c) for c in cutoffs)
    if test_cutoff is not None:
        test_cutoff = pd.Timestamp(test_cutoff)
        if test_cutoff not in ordered:
            raise InputError(
                f"test cutoff {test_cutoff.date()} is not one of the training cutoffs "
                f"({', '.join(str(c.date()) for c in ordered)})"
            )
        ordered = [c for c in ordered if c <= test_cutoff]
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
