"""Two registered versions side by side, on labels neither was trained on.

The comparison cutoff is the latest one whose label window ``[C, C + H)`` has matured in the
data and starts after both models' last training label (``trained_through``): the same
customers and labels, out of time for both. When no such cutoff exists the comparison says
why and when one will; feature-importance differences are shown either way.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from churnlens.config import Economics, FeatureConfig
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features import build_labels, build_snapshot
from churnlens.features.labels import observed_until
from churnlens.model import ChurnModel
from churnlens.training.metrics import customer_values_of, evaluate
from churnlens.training.plots import DPI, plot_calibration, plot_lift

#: Metrics shown, in this order.
METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift", "top_decile_capture", "base_rate", "n")


@dataclass(frozen=True)
class ComparedModel:
    """One side of a comparison: a registered version, read as data.

    Attributes
    ----------
    label : str
        How it is named in tables and legends (``v3 (champion)``).
    version : str
    aliases : tuple of str
    trained_through : Timestamp or None
        Last day of the latest label window it learnt from (None: not recorded).
    model : ChurnModel
    """

    label: str
    version: str
    aliases: tuple[str, ...]
    trained_through: pd.Timestamp | None
    model: ChurnModel


@dataclass
class Comparison:
    """What :func:`compare_models` found.

    ``cutoff`` is None when no matured labels exist that neither model was trained on;
    ``reason`` then says why. ``metrics`` has one row per model (empty without a cutoff),
    ``importance`` the gain share of each feature in each model and their difference.
    """

    a: ComparedModel
    b: ComparedModel
    horizon_days: int
    label_mode: str
    cutoff: pd.Timestamp | None
    reason: str
    metrics: pd.DataFrame
    importance: pd.DataFrame
    y: np.ndarray | None = None
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)


def gain_share(model: ChurnModel) -> pd.Series:
    """Each feature's share of the booster's total split gain (sums to 1)."""
    booster = model.booster
    gain = pd.Series(booster.feature_importance(importance_type="gain"), index=booster.feature_name(), dtype=float)
    total = gain.sum()
    return gain / total if total > 0 else gain


def importance_differences(a: ComparedModel, b: ComparedModel) -> pd.DataFrame:
    """Gain share of every feature in ``a`` and ``b`` and ``b - a``, largest absolute difference first."""
    frame = pd.concat({a.label: gain_share(a.model), b.label: gain_share(b.model)}, axis=1).fillna(0.0)
    frame["difference"] = frame[b.label] - frame[a.label]
    order = frame["difference"].abs().sort_values(ascending=False, kind="stable").index
    return frame.loc[order]


def comparison_cutoff(
    tables: Tables, horizon_days: int, trained_through: list[pd.Timestamp | None]
) -> tuple[pd.Timestamp | None, str]:
    """The latest matured cutoff after every model's last training label, or None and why."""
    latest = observed_until(tables) - pd.Timedelta(days=horizon_days)
    if any(t is None for t in trained_through):
        return None, "a model records no trained_through: it cannot be told which labels it learnt from"
    last = max(trained_through)
    if latest > last:
        label_end = latest + pd.Timedelta(days=horizon_days - 1)
        return latest, (
            f"latest matured cutoff {latest.date()} (labels to {label_end.date()}), "
            f"after both models' training labels (through {last.date()})"
        )
    ready = last + pd.Timedelta(days=1 + horizon_days)
    return None, (
        f"no matured labels neither model was trained on: the latest matured cutoff is {latest.date()} and the "
        f"later model was trained through {last.date()}; labels after that mature once the data reaches "
        f"{ready.date()}"
    )


def compare_models(
    tables: Tables,
    a: ComparedModel,
    b: ComparedModel,
    *,
    feature_config_of: Callable[[ChurnModel], FeatureConfig],
    economics: Economics | None = None,
) -> Comparison:
    """Compare two models on the latest matured labels neither was trained on.

    Parameters
    ----------
    tables : Tables
        Validated input tables (history and the matured labels).
    a, b : ComparedModel
    feature_config_of : callable
        ChurnModel -> FeatureConfig it was trained with (each model's snapshot uses its own).
    economics : Economics, optional
        Prices the profit metrics (default: the first model's recorded campaign economics), each
        customer's value being their trailing-12-month spend unless it sets ``value_per_save``.

    Raises
    ------
    InputError
        When the two models predict other horizons or label modes (their labels differ).
    """
    meta_a, meta_b = a.model.metadata, b.model.metadata
    horizon, mode = int(meta_a["horizon_days"]), str(meta_a["label_mode"])
    if (int(meta_b["horizon_days"]), str(meta_b["label_mode"])) != (horizon, mode):
        raise InputError(
            f"{a.label} predicts {mode} churn over {horizon} days, {b.label} {meta_b['label_mode']} churn over "
            f"{meta_b['horizon_days']} days: their labels differ, so they cannot be compared on them"
        )
    importance = importance_differences(a, b)
    cutoff, reason = comparison_cutoff(tables, horizon, [a.trained_through, b.trained_through])
    empty = pd.DataFrame(columns=list(METRICS))
    if cutoff is None:
        return Comparison(a, b, horizon, mode, None, reason, empty, importance)
    snapshots = {m.label: build_snapshot(tables, cutoff, feature_config_of(m.model)) for m in (a, b)}
    customers = snapshots[a.label].index.intersection(snapshots[b.label].index)
    if len(customers) == 0:
        return Comparison(a, b, horizon, mode, None, f"no active customer at cutoff {cutoff.date()}", empty, importance)
    y = build_labels(tables, cutoff, customers, horizon_days=horizon, mode=mode).to_numpy()
    probabilities = {m.label: m.model.predict_proba(snapshots[m.label].loc[customers]) for m in (a, b)}
    if len(np.unique(y)) < 2:
        reason += f"; every customer has the same label at {cutoff.date()}, so ranking metrics are undefined"
        return Comparison(a, b, horizon, mode, None, reason, empty, importance)
    economics = economics or Economics.from_metadata(meta_a)
    values = customer_values_of(snapshots[a.label].loc[customers])
    metrics = pd.DataFrame({label: evaluate(y, p, economics, values) for label, p in probabilities.items()}).T
    return Comparison(a, b, horizon, mode, cutoff, reason, metrics[list(METRICS)], importance, y, probabilities)


def comparison_figures(comparison: Comparison) -> dict[str, Figure]:
    """Overlaid calibration and lift/gain of both models (empty without labels)."""
    if comparison.cutoff is None or comparison.y is None:
        return {}
    when = f"cutoff {comparison.cutoff.date()}"
    return {
        "calibration": plot_calibration(comparison.y, comparison.probabilities, title=f"Calibration — {when}"),
        "lift": plot_lift(comparison.y, comparison.probabilities, title=f"Lift and gain — {when}"),
    }


_REPORT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}td:first-child,th:first-child{text-align:left}
img{max-width:100%}</style></head><body>
<h1>{{ title }}</h1>
<p>{{ reason }}.</p>
{% if metrics %}<h2>Metrics on {{ n }} customers at cutoff {{ cutoff }} ({{ mode }}, {{ horizon }} days)</h2>
<table><tr><th>metric</th>{% for m in models %}<th>{{ m }}</th>{% endfor %}</tr>
{% for name, values in metrics %}<tr><td>{{ name }}</td>{% for v in values %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
{% for name, png in figures %}<h2>{{ name }}</h2>
<img alt="{{ name }}" src="data:image/png;base64,{{ png }}">{% endfor %}
<h2>Largest feature-importance differences (share of total gain)</h2>
<table><tr><th>feature</th>{% for m in models %}<th>{{ m }}</th>{% endfor %}<th>difference</th></tr>
{% for name, values in importance %}<tr><td>{{ name }}</td>{% for v in values %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table></body></html>
"""


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(value: float) -> str:
    return "" if pd.isna(value) else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"


def write_comparison_report(comparison: Comparison, path: Path | str, *, top: int = 15) -> Path:
    """One self-contained HTML page: metrics, overlaid plots (inline PNGs), importance differences."""
    from jinja2 import Environment

    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out {path} must end in .html")
    models = [comparison.a.label, comparison.b.label]
    page = Environment(autoescape=True).from_string(_REPORT).render(
        title=f"{models[0]} vs {models[1]}",
        reason=comparison.reason,
        cutoff=None if comparison.cutoff is None else comparison.cutoff.date(),
        mode=comparison.label_mode,
        horizon=comparison.horizon_days,
        n=f"{len(comparison.y):,}" if comparison.y is not None else 0,
        models=models,
        metrics=[(m, [_cell(comparison.metrics.loc[k, m]) for k in models]) for m in comparison.metrics.columns],
        figures=[(name.capitalize(), _png(fig)) for name, fig in comparison_figures(comparison).items()],
        importance=[
            (name, [f"{row[models[0]]:.3f}", f"{row[models[1]]:.3f}", f"{row['difference']:+.3f}"])
            for name, row in comparison.importance.head(top).iterrows()
        ],
    )
    path.write_text(page, encoding="utf-8")
    return path
