"""Evaluation plots written as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from churnlens.training.metrics import lift_table  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    """ROC curves of the model and baselines on the test cutoff."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC — test cutoff")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_pr(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    """Precision-recall curves of the model and baselines."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, s in scores.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, label=name)
    ax.axhline(np.mean(y), ls=":", c="grey", label="base rate")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall — test cutoff")
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_calibration(y: np.ndarray, p: np.ndarray, path: Path, *, raw: np.ndarray | None = None) -> Path:
    """Reliability diagram of calibrated (and optionally raw) probabilities."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, probs in (("calibrated", p), ("uncalibrated", raw)):
        if probs is None:
            continue
        frac, mean = calibration_curve(y, probs, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o", label=label)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="perfect")
    ax.set(xlabel="Predicted churn probability", ylabel="Observed churn rate", title="Calibration — test cutoff")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_lift(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    """Cumulative gain (capture) and lift by contact depth."""
    fig, (gain_ax, lift_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    for name, s in scores.items():
        table = lift_table(y, s, bins=20)
        gain_ax.plot(np.r_[0, table["depth"]], np.r_[0, table["capture"]], label=name)
        lift_ax.plot(table["depth"], table["lift"], marker=".", label=name)
    gain_ax.plot([0, 1], [0, 1], ls=":", c="grey")
    gain_ax.set(xlabel="Share of base contacted", ylabel="Share of churners reached", title="Cumulative gain")
    lift_ax.axhline(1, ls=":", c="grey")
    lift_ax.set(xlabel="Share of base contacted", ylabel="Lift", title="Lift")
    gain_ax.legend(loc="lower right")
    return _save(fig, path)


def plot_importance(importance: pd.Series, path: Path, *, top: int = 25) -> Path:
    """Horizontal bar chart of total gain per feature."""
    data = importance.sort_values(ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(data) + 1.2))
    ax.barh(data.index, data.to_numpy())
    ax.set(xlabel="Total gain", title="Feature importance (LightGBM gain)")
    return _save(fig, path)


def plot_shap_summary(contributions: pd.DataFrame, features: pd.DataFrame, path: Path, *, top: int = 20) -> Path:
    """Beeswarm of SHAP contributions: one dot per customer, coloured by the feature's value rank."""
    contrib = contributions.drop(columns=["base_value"], errors="ignore")
    order = contrib.abs().mean().sort_values(ascending=False).head(top).index[::-1]
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(order) + 1.5))
    for row, name in enumerate(order):
        values = features[name]
        if isinstance(values.dtype, pd.CategoricalDtype):
            colour = values.cat.codes.to_numpy(dtype=float)
            colour[colour < 0] = np.nan
        else:
            colour = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        rank = pd.Series(colour).rank(pct=True).to_numpy()
        jitter = rng.uniform(-0.3, 0.3, len(rank))
        ax.scatter(contrib[name], row + jitter, c=rank, cmap="coolwarm", s=4, alpha=0.6, vmin=0, vmax=1,
                   rasterized=True)
    ax.axvline(0, c="grey", lw=0.8)
    ax.set_yticks(range(len(order)), order)
    ax.set(xlabel="SHAP contribution to churn log-odds (red = high feature value)", title="SHAP summary — test cutoff")
    return _save(fig, path)
