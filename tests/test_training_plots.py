"""Evaluation plots: Figures returned, AUC in the ROC/PR legends, CalibrationDisplay, shap's own
beeswarm (with its colour bar) and dependence plots, and no matplotlib backend chosen at import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, roc_auc_score

import churnlens
from churnlens.training import plots


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 800)
    model = np.clip(0.5 * y + rng.normal(0.25, 0.2, 800), 0.001, 0.999)
    baseline = np.clip(0.2 * y + rng.normal(0.4, 0.25, 800), 0.001, 0.999)
    return y, {"model": model, "recency only": baseline}


@pytest.fixture(scope="module")
def contributions():
    rng = np.random.default_rng(4)
    n = 300
    features = pd.DataFrame(
        {
            "days_since_last_purchase": rng.exponential(60, n),
            "orders_365d": rng.poisson(5, n).astype(float),
            "tier": pd.Categorical(rng.choice(["gold", "silver", None], n)),
        }
    )
    contrib = pd.DataFrame(
        {
            "days_since_last_purchase": 0.01 * (features["days_since_last_purchase"] - 60),
            "orders_365d": -0.2 * (features["orders_365d"] - 5),
            "tier": rng.normal(0, 0.05, n),
            "base_value": np.full(n, -1.2),
        }
    )
    return contrib, features


def _legend(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_roc_and_pr_carry_auc_in_the_legend(predictions, tmp_path):
    y, scores = predictions
    roc = plots.plot_roc(y, scores, tmp_path / "roc.png")
    assert isinstance(roc, Figure) and (tmp_path / "roc.png").stat().st_size > 5_000
    legend = _legend(roc)
    for name, s in scores.items():
        assert f"{name} (AUC = {roc_auc_score(y, s):.2f})" in legend
    pr = plots.plot_pr(y, scores)
    legend = _legend(pr)
    for name, s in scores.items():
        assert f"{name} (AP = {average_precision_score(y, s):.2f})" in legend


def test_calibration_uses_calibration_display_and_overlays_models(predictions):
    y, scores = predictions
    fig = plots.plot_calibration(y, scores)
    assert _legend(fig)[:2] == ["Perfectly calibrated", "model"] and "recency only" in _legend(fig)
    one = plots.plot_calibration(y, scores["model"], raw=scores["recency only"])
    assert {"calibrated", "uncalibrated"} <= set(_legend(one))


def test_shap_beeswarm_and_dependence_are_shaps_own_with_a_colour_bar(contributions, tmp_path):
    contrib, features = contributions
    open_before = plt.get_fignums()
    fig = plots.plot_shap_summary(contrib, features, tmp_path / "shap.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # the beeswarm and shap's colour bar
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == "days_since_last_purchase"  # largest mean |SHAP| on top
    figures = plots.plot_shap_dependences(contrib, features, tmp_path, top=2)
    assert list(figures) == ["days_since_last_purchase", "orders_365d"]
    assert (tmp_path / "shap_dependence_orders_365d.png").is_file()
    assert plt.get_fignums() == open_before  # shap's pyplot figures are released
    state = np.random.get_state()[1].copy()
    plots.plot_shap_dependence(contrib, features, "tier")
    assert (np.random.get_state()[1] == state).all()  # numpy's global random state is left as it was


def test_same_inputs_same_png(contributions, tmp_path):
    contrib, features = contributions
    a = plots.plot_shap_dependence(contrib, features, "orders_365d", tmp_path / "a.png")
    b = plots.plot_shap_dependence(contrib, features, "orders_365d", tmp_path / "b.png")
    assert a is not b and (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_no_module_sets_a_matplotlib_backend():
    root = Path(churnlens.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("use", "switch_backend"):
                if "matplotlib" in ast.unparse(node.func) or "plt" in ast.unparse(node.func):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "import churnlens.training.plots, churnlens.training.pipeline, churnlens.serving.card, churnlens.cli.main; "
        "import matplotlib.pyplot as plt; print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "svg"
