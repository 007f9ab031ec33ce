"""The model that ships: refit on every matured cutoff, calibrated out of fold at the latest ones.

The evaluation (:mod:`churnlens.training.evaluation`) measures the method and decides the
hyper-parameters and how many trees early stopping keeps; the refit then trains on every
cutoff whose label window has matured, with no validation cutoff held back, so the shipped
model has seen the labels closest to the customers it will score. Its calibrator cannot be
fitted on margins of rows the trees trained on (they are over-confident there), so it is
fitted on out-of-fold margins: the customers are dealt into folds, each fold's rows at the
most recent matured cutoffs are scored by a model trained (same settings, same number of
trees) on the other folds' customers, and the calibrator is fitted on those margins.

Trees and rows
--------------
Early stopping picks the number of trees on the evaluation's training rows; the refit has
more rows (every matured cutoff, validation included). With a fixed learning rate the best
number of trees grows with the rows, more slowly than them. :func:`scaled_rounds` scales the
evaluated trees by ``(refit rows / evaluated rows) ** ROUNDS_EXPONENT``; the exponent was
measured on the simulator and Online Retail (benchmarks/RESULTS.md, "Trees and rows").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnlens.config import LightGBMParams, TrainConfig
from churnlens.training.estimator import ChurnClassifier
from churnlens.training.source import DistributedTrainingSet
from churnlens.training.split import customer_folds, fold_of_rows

#: Exponent of the row ratio in :func:`scaled_rounds` (see the module docstring).
ROUNDS_EXPONENT = 0.5


def scaled_rounds(rounds: int, rows_evaluated: int, rows_refit: int, *, max_rounds: int) -> int:
    """Trees for a refit on ``rows_refit`` rows when early stopping kept ``rounds`` on ``rows_evaluated``.

    ``rounds * (rows_refit / rows_evaluated) ** ROUNDS_EXPONENT``, rounded, between 1 and
    ``max_rounds``.
    """
    if rows_evaluated <= 0:
        return max(1, min(int(rounds), max_rounds))
    scaled = rounds * (max(rows_refit, 1) / rows_evaluated) ** ROUNDS_EXPONENT
    return int(min(max(round(scaled), 1), max_rounds))


def cutoff_weights(frame: pd.DataFrame, half_life_days: float) -> np.ndarray | None:
    """Row weights ``0.5 ** (age / half_life)``, age = days from the row's cutoff to the latest
    cutoff of ``frame``; None when ``half_life_days`` is 0 (no weighting)."""
    if not half_life_days:
        return None
    cutoffs = frame.index.get_level_values("cutoff")
    age = (cutoffs.max() - cutoffs) / pd.Timedelta(days=1)
    return np.power(0.5, np.asarray(age, dtype=np.float64) / float(half_life_days))


def calibration_cutoffs(cutoffs: Sequence[pd.Timestamp], count: int) -> list[pd.Timestamp]:
    """The ``count`` most recent of ``cutoffs``, ascending."""
    return sorted(pd.Timestamp(c) for c in cutoffs)[-count:]


@dataclass(frozen=True)
class ShippingRecipe:
    """How a shipped model is fitted, as decided by the evaluation.

    Attributes
    ----------
    params : LightGBMParams
        Hyper-parameters (tuned, or as configured).
    linear_base : {"rfm", "none"}
    rounds : int
        Trees early stopping kept in the evaluation, per ``rows`` training rows.
    rows : int
    """

    params: LightGBMParams
    linear_base: str
    rounds: int
    rows: int


@dataclass
class OutOfFoldMargins:
    """Margins the calibrator was fitted on: each from a model that never saw that customer.

    Attributes
    ----------
    margin, y : ndarray
        Out-of-fold margin and label of each calibration row.
    customer_id : ndarray
        The calibration rows' customers.
    fold : ndarray
        Their fold (the model that scored them trained on every other fold).
    cutoffs : list of Timestamp
        The calibration cutoffs.
    train_customers : list of set
        Per fold, the customers its model trained on (for checks; emptied for big runs).
    """

    margin: np.ndarray
    y: np.ndarray
    customer_id: np.ndarray
    fold: np.ndarray
    cutoffs: list[pd.Timestamp]
    train_customers: list[set[str]]


def classifier(config: TrainConfig, recipe: ShippingRecipe) -> ChurnClassifier:
    """An unfitted classifier with the run's settings and the recipe's parameters and linear base."""
    return ChurnClassifier(recipe.params, seed=config.seed, threads=config.threads, class_weight=config.class_weight,
                           calibration=config.calibration, linear_base=recipe.linear_base)


#: Above this many rows the cross-fitted models do not record their customer sets.
_KEEP_CUSTOMER_SETS = 200_000


def fit_shipped_model(
    frame: pd.DataFrame,
    recipe: ShippingRecipe,
    config: TrainConfig,
    *,
    distributed: DistributedTrainingSet | None = None,
    distributed_cutoffs: Sequence[pd.Timestamp] = (),
) -> tuple[ChurnClassifier, OutOfFoldMargins]:
    """Refit on every row of ``frame`` and calibrate out of fold at its most recent cutoffs.

    Parameters
    ----------
    frame : DataFrame
        Training rows (MultiIndex cutoff, customer_id; features then ``churned``) of every
        cutoff the model may learn from.
    recipe : ShippingRecipe
        Parameters, linear base and trees from the evaluation; the trees are scaled to the
        rows of ``frame`` (:func:`scaled_rounds`).
    config : TrainConfig
        Seed, threads, class weight, calibration method, ``calibration_folds``,
        ``calibration_cutoffs`` and ``recent_weight_half_life_days``.
    distributed : DistributedTrainingSet, optional
        When given, the final trees grow on its rows of ``distributed_cutoffs`` on the
        cluster (``frame`` is then a sample of whole customers of them); the cross-fitted
        models that give the calibration margins train here on ``frame``.

    Returns
    -------
    (ChurnClassifier, OutOfFoldMargins)
        The fitted, calibrated classifier and the margins its calibrator was fitted on.
    """
    y = frame["churned"].to_numpy(dtype=int)
    X = frame.drop(columns=["churned"])
    rows = distributed.rows(distributed_cutoffs) if distributed is not None else len(frame)
    rounds = scaled_rounds(recipe.rounds, recipe.rows, rows, max_rounds=recipe.params.max_rounds)
    weights = cutoff_weights(frame, config.recent_weight_half_life_days)

    model = classifier(config, recipe)
    model.fit_rounds(X, y, rounds=rounds, sample_weight=weights, train_set=distributed, cutoffs=distributed_cutoffs)

    cutoffs = frame.index.get_level_values("cutoff")
    calibrate_at = calibration_cutoffs(pd.unique(cutoffs), config.calibration_cutoffs)
    folds = customer_folds(frame.index.get_level_values("customer_id"), folds=config.calibration_folds,
                           seed=config.seed)
    fold = fold_of_rows(frame, folds)
    at_calibration = np.asarray(cutoffs.isin(calibrate_at))
    margin = np.full(len(frame), np.nan)
    seen: list[set[str]] = []
    ids = frame.index.get_level_values("customer_id")
    for g in range(config.calibration_folds):
        train = fold != g
        scored = ~train & at_calibration
        if not scored.any():
            seen.append(set())
            continue
        # each cross-fitted model gets the evaluated trees scaled to its own rows
        member = classifier(config, recipe).fit_rounds(
            X[train], y[train],
            rounds=scaled_rounds(recipe.rounds, recipe.rows, int(train.sum()), max_rounds=recipe.params.max_rounds),
            sample_weight=None if weights is None else weights[train],
        )  # fmt: skip
        margin[scored] = member.margin(X[scored])
        seen.append(set(ids[train]) if len(frame) <= _KEEP_CUSTOMER_SETS else set())
    chosen = at_calibration
    model.calibrate(margin[chosen], y[chosen])
    oof = OutOfFoldMargins(margin=margin[chosen], y=y[chosen], customer_id=np.asarray(ids[chosen], dtype=object),
                           fold=fold[chosen], cutoffs=calibrate_at, train_customers=seen)
    model.shipped_rounds_ = rounds
    return model, oof
