"""Evaluation plots as matplotlib Figures: ROC, precision-recall, calibration, lift/gain,
feature importance, and shap's own beeswarm and dependence plots.

No backend is chosen here (a notebook keeps its own). The ROC, PR, calibration, lift and
importance figures are plain :class:`~matplotlib.figure.Figure` objects outside pyplot, so
drawing them never touches a user's pyplot state. shap draws through pyplot; its figures are
released from pyplot as soon as they are drawn. Each function returns its Figure, and also
writes it as a PNG when given a ``path``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

from churnlens.training.metrics import lift_table

#: Resolution of written PNGs: readable on screen, small in a repository and a notebook (a plot is ~30-100 kB).
DPI = 80


def save_figure(fig: Figure, path: Path | str, *, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG (tight bounding box) and return the path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _done(fig: Figure, path: Path | str | None) -> Figure:
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_roc(y: np.ndarray, scores: Mapping[str, np.ndarray], path: Path | str | None = None, *,
             title: str = "ROC — test cutoff") -> Figure:  # fmt: skip
    """ROC curves of the model and baselines, each with its AUC in the legend.

    Parameters
    ----------
    y : array of 0/1
        Observed churn.
    scores : mapping of name to array
        Scores of each model (same length as ``y``).
    path : path, optional
        Also write the figure there as a PNG.

    Returns
    -------
    Figure
    """
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    for i, (name, s) in enumerate(scores.items()):
        RocCurveDisplay.from_predictions(
            y, s, name=name, ax=ax, plot_chance_level=i == len(scores) - 1, chance_level_kw={"ls": ":", "c": "grey"}
        )
    ax.set(title=title, xlabel="False positive rate", ylabel="True positive rate")
    ax.legend(loc="lower right")
    return _done(fig, path)


def plot_pr(y: np.ndarray, scores: Mapping[str, np.ndarray], path: Path | str | None = None, *,
            title: str = "Precision-recall — test cutoff") -> Figure:  # fmt: skip
    """Precision-recall curves of the model and baselines, each with its average precision (PR AUC)
    in the legend, and the base rate (a model without skill) as a dotted line."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    for i, (name, s) in enumerate(scores.items()):
        PrecisionRecallDisplay.from_predictions(
            y, s, name=name, ax=ax, plot_chance_level=i == len(scores) - 1, chance_level_kw={"ls": ":", "c": "grey"}
        )
    ax.set(title=title, xlabel="Recall", ylabel="Precision")
    ax.legend(loc="upper right")
    return _done(fig, path)


def plot_calibration(y: np.ndarray, p: np.ndarray | Mapping[str, np.ndarray], path: Path | str | None = None, *,
                     raw: np.ndarray | None = None, title: str = "Calibration — test cutoff") -> Figure:  # fmt: skip
    """Reliability diagram (:class:`~sklearn.calibration.CalibrationDisplay`, 10 quantile bins).

    ``p`` is the calibrated probabilities, or a mapping of name to probabilities to overlay
    several models; ``raw`` adds the uncalibrated ones.
    """
    curves = dict(p) if isinstance(p, Mapping) else {"calibrated": p}
    if raw is not None:
        curves["uncalibrated"] = raw
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    for i, (name, probs) in enumerate(curves.items()):
        CalibrationDisplay.from_predictions(y, probs, n_bins=10, strategy="quantile", name=name, ax=ax,
                                            ref_line=i == 0)  # fmt: skip
    ax.set(title=title, xlabel="Predicted churn probability", ylabel="Observed churn rate")
    ax.legend(loc="upper left")
    return _done(fig, path)


def plot_lift(y: np.ndarray, scores: Mapping[str, np.ndarray], path: Path | str | None = None, *,
              title: str | None = None) -> Figure:  # fmt: skip
    """Cumulative gain (capture) and lift by contact depth."""
    fig = Figure(figsize=(10, 4.5))
    gain_ax, lift_ax = fig.subplots(1, 2)
    for name, s in scores.items():
        table = lift_table(y, s, bins=20)
        gain_ax.plot(np.r_[0, table["depth"]], np.r_[0, table["capture"]], label=name)
        lift_ax.plot(table["depth"], table["lift"], marker=".", label=name)
    gain_ax.plot([0, 1], [0, 1], ls=":", c="grey")
    gain_ax.set(xlabel="Share of base contacted", ylabel="Share of churners reached", title="Cumulative gain")
    lift_ax.axhline(1, ls=":", c="grey")
    lift_ax.set(xlabel="Share of base contacted", ylabel="Lift", title="Lift")
    gain_ax.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    return _done(fig, path)


def plot_importance(importance: pd.Series, path: Path | str | None = None, *, top: int = 25) -> Figure:
    """Horizontal bar chart of total gain per feature."""
    data = importance.sort_values(ascending=True).tail(top)
    fig = Figure(figsize=(7, 0.28 * len(data) + 1.2))
    ax = fig.add_subplot()
    ax.barh(data.index, data.to_numpy())
    ax.set(xlabel="Total gain", title="Feature importance (LightGBM gain)")
    return _done(fig, path)


# --------------------------------------------------------------------------- SHAP


def shap_explanation(contributions: pd.DataFrame, features: pd.DataFrame):  # -> shap.Explanation
    """A :class:`shap.Explanation` of SHAP contributions (log-odds) and the features they explain.

    Categorical features are given as their category codes (missing = NaN), so shap can colour
    dots by value; the contributions' ``base_value`` column becomes the base values.
    """
    import shap

    values = contributions.drop(columns=["base_value"], errors="ignore")
    data = pd.DataFrame(index=features.index)
    for name in values.columns:
        column = features[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy(dtype=float)
            codes[codes < 0] = np.nan
            data[name] = codes
        else:
            data[name] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    base = contributions["base_value"].to_numpy(dtype=float) if "base_value" in contributions else None
    return shap.Explanation(
        values=values.to_numpy(dtype=float), base_values=base, data=data.to_numpy(dtype=float),
        feature_names=list(values.columns),
    )  # fmt: skip


@contextlib.contextmanager
def _shap_figure(figsize: tuple[float, float]) -> Iterator[Figure]:
    """A pyplot figure for shap to draw on (it needs pyplot), released from pyplot afterwards, and
    numpy's global random state (shap shuffles dots with it) seeded for the drawing, then restored."""
    import matplotlib.pyplot as plt

    state = np.random.get_state()
    np.random.seed(0)
    fig = plt.figure(figsize=figsize)
    try:
        yield fig
    finally:
        np.random.set_state(state)
        plt.close(fig)  # the Figure stays usable: saved, returned, shown inline


def top_features(contributions: pd.DataFrame, top: int) -> list[str]:
    """The ``top`` features by mean absolute SHAP contribution, largest first."""
    values = contributions.drop(columns=["base_value"], errors="ignore")
    return list(values.abs().mean().sort_values(ascending=False).head(top).index)


def plot_shap_summary(contributions: pd.DataFrame, features: pd.DataFrame, path: Path | str | None = None, *,
                      top: int = 20, title: str = "SHAP summary — test cutoff") -> Figure:  # fmt: skip
    """shap's beeswarm of the ``top`` features: one dot per customer, coloured by the feature's
    value (colour bar), on the churn log-odds scale."""
    import shap

    explanation = shap_explanation(contributions, features)
    with _shap_figure((8, 0.35 * min(top, explanation.shape[1]) + 1.5)) as fig:
        ax = fig.add_subplot()
        shap.plots.beeswarm(explanation, max_display=top, ax=ax, show=False, plot_size=None,
                            group_remaining_features=False)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("SHAP contribution to churn log-odds")
    return _done(fig, path)


def plot_shap_dependence(contributions: pd.DataFrame, features: pd.DataFrame, feature: str,
                         path: Path | str | None = None) -> Figure:  # fmt: skip
    """shap's dependence (scatter) plot of one feature: its value against its contribution,
    coloured by the feature it interacts with most."""
    import shap

    explanation = shap_explanation(contributions, features)
    with _shap_figure((6.5, 4.5)) as fig:
        ax = fig.add_subplot()
        shap.plots.scatter(explanation[:, feature], color=explanation, ax=ax, show=False,
                           ylabel="SHAP contribution (log-odds)")  # fmt: skip
        ax.set_title(f"SHAP dependence — {feature}")
    return _done(fig, path)


def plot_shap_dependences(contributions: pd.DataFrame, features: pd.DataFrame, folder: Path | str | None = None,
                          *, top: int = 4) -> dict[str, Figure]:  # fmt: skip
    """Dependence plots of the ``top`` features (``shap_dependence_<feature>.png`` in ``folder``)."""
    figures = {}
    for name in top_features(contributions, top):
        path = None if folder is None else Path(folder) / f"shap_dependence_{name}.png"
        figures[name] = plot_shap_dependence(contributions, features, name, path)
    return figures
