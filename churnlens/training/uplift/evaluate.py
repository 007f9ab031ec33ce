"""Out-of-time evaluation of an uplift ranking on held-out campaigns, against random and churn-risk rankings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnlens.uplift.metrics import Curves, auuc, qini_coefficient, sampled_curves, uplift_by_decile

#: Rankings compared in every evaluation, in this order.
RANKINGS: tuple[str, ...] = ("uplift", "churn_probability", "random")


@dataclass
class RankingEvaluation:
    """One set of held-out rows (an action's, or all of them) ranked three ways.

    Attributes
    ----------
    name : str
        The action, or ``overall``.
    rows, treated, control : int
    observed_uplift : float
        Control churn minus treated churn over all the rows.
    qini, auuc : dict
        Per ranking (:data:`RANKINGS`): the Qini coefficient and the AUUC.
    deciles : DataFrame
        Uplift by decile of the predicted uplift (:func:`churnlens.uplift.metrics.uplift_by_decile`).
    curves : dict
        Per ranking, its :class:`~churnlens.uplift.metrics.Curves`.
    """

    name: str
    rows: int
    treated: int
    control: int
    observed_uplift: float
    qini: dict[str, float]
    auuc: dict[str, float]
    deciles: pd.DataFrame
    curves: dict[str, Curves] = field(repr=False, default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat figures for MLflow: ``<name>.qini``, ``<name>.qini_churn_probability`` ..."""
        out = {f"{self.name}.rows": float(self.rows), f"{self.name}.observed_uplift": self.observed_uplift}
        for ranking in RANKINGS:
            suffix = "" if ranking == "uplift" else f"_{ranking}"
            out[f"{self.name}.qini{suffix}"] = self.qini[ranking]
            out[f"{self.name}.auuc{suffix}"] = self.auuc[ranking]
        return {k: float(v) for k, v in out.items() if isinstance(v, float | int) and math.isfinite(v)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the curves)."""
        return {
            "name": self.name, "rows": self.rows, "treated": self.treated, "control": self.control,
            "observed_uplift": self.observed_uplift, "qini": dict(self.qini), "auuc": dict(self.auuc),
            "deciles": self.deciles.to_dict(orient="records"),
        }  # fmt: skip


def random_scores(n: int, seed: int) -> np.ndarray:
    """A seeded random ordering's scores."""
    return np.random.default_rng(seed).permutation(n).astype("float64")


def evaluate_rankings(
    name: str,
    uplift: np.ndarray,
    churn_probability: np.ndarray,
    treated: np.ndarray,
    churned: np.ndarray,
    *,
    bins: int = 10,
    seed: int = 0,
) -> RankingEvaluation:
    """Qini, AUUC and curves of the uplift ranking, the churn-probability ranking and a random one."""
    treated = np.asarray(treated, dtype=bool)
    churned = np.asarray(churned, dtype="float64")
    scores = {"uplift": uplift, "churn_probability": churn_probability,
              "random": random_scores(len(churned), seed)}  # fmt: skip
    nt, nc = int(treated.sum()), int((~treated).sum())
    observed = float(churned[~treated].mean() - churned[treated].mean()) if nt and nc else math.nan
    return RankingEvaluation(
        name=name, rows=len(churned), treated=nt, control=nc, observed_uplift=observed,
        qini={k: qini_coefficient(s, treated, churned) for k, s in scores.items()},
        auuc={k: auuc(s, treated, churned) for k, s in scores.items()},
        deciles=uplift_by_decile(uplift, treated, churned, bins=bins),
        curves={k: sampled_curves(s, treated, churned) for k, s in scores.items()},
    )  # fmt: skip


def summary_table(evaluations: list[RankingEvaluation]) -> pd.DataFrame:
    """One row per evaluation: rows, treated, control, observed uplift, Qini and AUUC of each ranking."""
    rows = []
    for ev in evaluations:
        row: dict[str, Any] = {"name": ev.name, "rows": ev.rows, "treated": ev.treated, "control": ev.control,
                               "observed_uplift": ev.observed_uplift}  # fmt: skip
        for ranking in RANKINGS:
            row[f"qini_{ranking}"] = ev.qini[ranking]
            row[f"auuc_{ranking}"] = ev.auuc[ranking]
        rows.append(row)
    return pd.DataFrame(rows)
