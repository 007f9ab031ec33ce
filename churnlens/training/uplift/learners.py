"""Meta-learners of the uplift of one action on LightGBM regressors: T, X and DR.

Uplift here is the churn probability an action takes away, ``tau(x) = mu_0(x) - mu_1(x)`` with
``mu_0`` the churn probability without the action (control) and ``mu_1`` with it (treated).
Every learner is fitted with LightGBM's L2 regression (identity link) so that its uplift is a
weighted sum of boosters, whose exact TreeSHAP values are the same weighted sum
(:class:`churnlens.uplift.model.UpliftModel`):

- **T** (two models): ``mu_0`` on the control rows, ``mu_1`` on the treated rows;
  ``tau = mu_0 - mu_1``.
- **X** (Künzel et al. 2019): ``mu_0``, ``mu_1`` as above; imputed effects
  ``D_1 = mu_0(x) - y`` on the treated rows and ``D_0 = y - mu_1(x)`` on the control rows, each
  regressed (``tau_1``, ``tau_0``); ``tau = e tau_0 + (1 - e) tau_1`` with ``e`` the treated
  share (the propensity, constant by design in a randomised campaign).
- **DR** (Kennedy 2020): cross-fitted ``mu_0``, ``mu_1`` (folds by a hash of the customer id),
  the doubly robust pseudo-outcome
  ``phi = mu_0 - mu_1 + (1 - t)(y - mu_0) / (1 - e) - t (y - mu_1) / e`` with ``e`` the row's
  known propensity, regressed once.
- **t_shared** and **nested**: T-learners on the log-odds around one shared churn model, their
  uplift distilled into one regressor per action (:func:`_fit_shared`). ``nested`` boosts each
  action's offset on top of the no-action one, so an action's uplift shrinks towards none
  where its treated rows say nothing; ``t_shared`` boosts both offsets from the shared model.

LightGBM's meta-learners in causalml would fit too, but their models are Python objects (a
pickle to store) and their SHAP is not exact on the weighted sum; these are a few lines of
LightGBM each, stored as booster text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import lightgbm as lgb
import numpy as np

from churnlens.config import UpliftSettings


def lgb_params(settings: UpliftSettings, *, objective: str = "regression") -> dict:
    """LightGBM parameters of every model of a learner (deterministic, seeded)."""
    return {
        "objective": objective,
        "learning_rate": float(settings.learning_rate),
        "num_leaves": int(settings.num_leaves),
        "min_data_in_leaf": int(settings.min_child_samples),
        "feature_fraction": float(settings.feature_fraction),
        "lambda_l2": float(settings.lambda_l2),
        "seed": int(settings.seed),
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": int(settings.threads),
        "verbosity": -1,
    }


def fit_booster(
    X: np.ndarray,
    y: np.ndarray,
    settings: UpliftSettings,
    *,
    features: list[str],
    categorical: list[int],
    objective: str = "regression",
    init_score: np.ndarray | None = None,
) -> lgb.Booster:
    """One LightGBM model of ``y`` on the feature matrix ``X`` (categorical columns by position);
    ``init_score``: a margin the trees are boosted from (not part of the model's predictions)."""
    data = lgb.Dataset(
        X, label=np.asarray(y, dtype="float64"), feature_name=features, categorical_feature=categorical,
        init_score=init_score, params={"verbosity": -1, "min_data_in_bin": 3}, free_raw_data=True,
    )  # fmt: skip
    return lgb.train(lgb_params(settings, objective=objective), data, num_boost_round=int(settings.rounds))


def _predict(booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    return booster.predict(X, raw_score=True) if len(X) else np.zeros(0)


def customer_folds(customer_ids: np.ndarray, folds: int) -> np.ndarray:
    """Fold of each row from a hash of its customer id: stable across runs and row orders."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(str(c).encode(), digest_size=4).digest(), "little") % folds
         for c in customer_ids],
        dtype=np.int64,
    )  # fmt: skip


@dataclass
class FittedUplift:
    """The uplift of one action as ``(booster, weight)`` components, and the learner's outcome model
    of churn without the action (``control_churn``; the T and X learners' ``mu_0``, the DR
    learner's out-of-fold one), kept for evaluation only."""

    components: list[tuple[lgb.Booster, float]]
    control_churn: lgb.Booster | None = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The uplift of rows of ``X``."""
        out = np.zeros(len(X))
        for booster, weight in self.components:
            out += weight * _predict(booster, X)
        return out


def fit_learner(
    learner: str,
    X: np.ndarray,
    y: np.ndarray,
    treated: np.ndarray,
    action: np.ndarray,
    propensity: np.ndarray,
    customer_ids: np.ndarray,
    actions: list[str],
    settings: UpliftSettings,
    *,
    features: list[str],
    categorical: list[int],
) -> dict[str, FittedUplift]:
    """Fit ``learner`` on randomised rows of several actions; the uplift of each of ``actions``.

    The churn probability without any action does not depend on which action a control
    customer was assigned (the assignment is a function of their features, and nothing was
    sent), so every learner estimates it from the control rows of all actions together; what
    an action does is learnt from its own treated rows.

    Parameters
    ----------
    learner : {"t", "x", "dr", "t_shared", "nested"}
    X : ndarray (rows x features)
        :func:`churnlens.model.feature_matrix` of the rows' snapshots.
    y : ndarray
        Churned (1) or not (0) within the horizon after the contact.
    treated : ndarray of bool
    action : ndarray of str
        Each row's assigned action (its randomisation stratum).
    propensity : ndarray
        Treated share of each row's campaign and action.
    customer_ids : ndarray
        For cross-fitting folds.
    actions : list of str
        The actions to learn.
    settings : UpliftSettings
    features : list of str
    categorical : list of int
        Positions of categorical features in ``X``.

    Returns
    -------
    dict of str to FittedUplift
    """
    y = np.asarray(y, dtype="float64")
    t = np.asarray(treated, dtype=bool)
    action = np.asarray(action, dtype=object)
    mine = np.isin(action, actions)
    kw = {"features": features, "categorical": categorical}

    def fit(rows: np.ndarray, target: np.ndarray, **extra: object) -> lgb.Booster:
        return fit_booster(X[rows], target, settings, **kw, **extra)

    control = mine & ~t
    if learner in ("t_shared", "nested"):
        return _fit_shared(X, y, t, action, customer_ids, actions, settings, kw, mine, nested=learner == "nested")
    if learner in ("t", "x"):
        mu0 = fit(control, y[control])
        out = {}
        for a in actions:
            arm = t & (action == a)
            mu1 = fit(arm, y[arm])
            if learner == "t":
                out[a] = FittedUplift([(mu0, 1.0), (mu1, -1.0)], control_churn=mu0)
                continue
            rows = action == a
            tau1 = fit(arm, _predict(mu0, X[arm]) - y[arm])
            ctl = rows & ~t
            tau0 = fit(ctl, y[ctl] - _predict(mu1, X[ctl]))
            e = float(t[rows].mean())
            out[a] = FittedUplift([(tau0, e), (tau1, 1.0 - e)], control_churn=mu0)
        return out
    if learner == "dr":
        folds = customer_folds(customer_ids, int(settings.folds))
        m0 = np.zeros(len(y))
        for k in range(int(settings.folds)):
            out_k, in_k = folds == k, folds != k
            m0[out_k] = _predict(fit(in_k & control, y[in_k & control]), X[out_k])
        e_all = np.clip(np.asarray(propensity, dtype="float64"), 0.01, 0.99)
        out = {}
        for a in actions:
            rows = action == a
            m1 = np.zeros(len(y))
            for k in range(int(settings.folds)):
                out_k, in_k = rows & (folds == k), folds != k
                m1[out_k] = _predict(fit(in_k & rows & t, y[in_k & rows & t]), X[out_k])
            phi = m0 - m1 + (~t) * (y - m0) / (1.0 - e_all) - t * (y - m1) / e_all
            out[a] = FittedUplift([(fit(rows, phi[rows]), 1.0)])
        return out
    raise ValueError(f"unknown uplift learner {learner!r}")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _fit_shared(
    X: np.ndarray, y: np.ndarray, t: np.ndarray, action: np.ndarray, customer_ids: np.ndarray,
    actions: list[str], settings: UpliftSettings, kw: dict, mine: np.ndarray, *, nested: bool,
) -> dict[str, FittedUplift]:
    """T-learner on the log-odds with one shared churn base, distilled into one regressor per action.

    1. ``B``: a churn classifier on every row (all actions, treated and control), out of fold
       (``base_rounds`` rounds);
    2. ``g_0``: a small boosted log-odds offset from ``B`` (``init_score``) on the control rows of
       all actions: the churn probability without any action is ``p_0 = sigmoid(B + g_0)``;
    3. per action ``a``, a small boosted offset ``g_a`` on its treated rows, boosted from
       ``B + g_0`` (``nested``: ``g_a`` is the action's effect, and its shrinkage pulls the
       uplift towards none) or from ``B`` (``t_shared``: two independent offsets whose
       difference is the effect); ``p_a = sigmoid(B + g_0 + g_a)`` or ``sigmoid(B + g_a)``.
       An offset moves the probability most where the customer can still be kept (a customer
       certain to churn, or to stay, barely moves);
    4. ``tau_a = p_0 - p_a`` on every row, regressed by one LightGBM model per action (the
       *student*, identity link): the model stored and served is the student, so its TreeSHAP
       values are exact and add up to the uplift it predicts.
    """
    folds = customer_folds(customer_ids, int(settings.folds))
    base_settings = replace(settings, rounds=int(settings.base_rounds))
    base = np.zeros(len(y))
    for k in range(int(settings.folds)):
        out_k, in_k = folds == k, mine & (folds != k)
        booster = fit_booster(X[in_k], y[in_k], base_settings, objective="binary", **kw)
        base[out_k] = booster.predict(X[out_k], raw_score=True)
    offset = replace(
        settings, num_leaves=int(settings.offset_leaves), rounds=int(settings.offset_rounds),
        feature_fraction=1.0,
    )
    control = mine & ~t
    g0 = fit_booster(X[control], y[control], offset, objective="binary", init_score=base[control], **kw)
    z0 = base + _predict(g0, X)
    p0 = _sigmoid(z0)
    start = z0 if nested else base
    student_settings = replace(
        settings, num_leaves=int(settings.student_leaves), rounds=int(settings.student_rounds),
        min_child_samples=20, lambda_l2=0.0, feature_fraction=1.0,
    )
    out = {}
    for a in actions:
        arm = t & (action == a)
        ga = fit_booster(X[arm], y[arm], offset, objective="binary", init_score=start[arm], **kw)
        teacher = p0 - _sigmoid(start + _predict(ga, X))
        student = fit_booster(X[mine], teacher[mine], student_settings, **kw)
        out[a] = FittedUplift([(student, 1.0)])
    return out
