"""Two registered versions on the simulator: ``churnlens models compare`` on labels neither was trained on,
and the registered model served by MLflow itself (``mlflow models predict --env-manager local``) giving the
same calibrated probabilities as ``churnlens score``; the churnlens version on the run, the registered
version and the logged model, and the training set logged as the run's input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

import churnlens
from churnlens.cli.main import app
from churnlens.config import LightGBMParams
from churnlens.data.io import load_tables, write_tables
from churnlens.features import build_labels, build_snapshot
from churnlens.features.labels import observed_until
from churnlens.serving.core import feature_config_of
from churnlens.training import TrainConfig, train_model
from churnlens.training.mlflow_log import read_model_version, signature_frame
from churnlens.training.packaging import source_checkout

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]

SIM = {"n_customers": 1500, "months": 18, "seed": 31}
CONFIG = TrainConfig(backtests=1, lgbm=LightGBMParams(max_rounds=80, early_stopping_rounds=10))
NAME = "cmp"
ENV = {"COLUMNS": "200"}


def truncated(tables, end: pd.Timestamp):
    """The tables as they stood before ``end`` (events at or after it not yet happened)."""
    return tables.replace(**{
        name: frame[frame["timestamp"] < end].reset_index(drop=True)
        for name, frame in tables.present().items() if "timestamp" in frame.columns
    })  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from churnlens.simulate import simulate

    root = tmp_path_factory.mktemp("compare")
    write_tables(simulate(**SIM).tables, root / "full")
    full, _ = load_tables(root / "full")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    end = observed_until(full)
    older = truncated(full, end - pd.Timedelta(days=150))
    newer = truncated(full, end - pd.Timedelta(days=120))
    write_tables(newer, root / "newer")
    first = train_model(older, tracking_uri=uri, model_name=NAME, train_config=CONFIG)
    second = train_model(newer, tracking_uri=uri, model_name=NAME, train_config=CONFIG,
                         data_source=str(root / "newer"))  # fmt: skip
    return {"root": root, "uri": uri, "full": full, "runs": (first, second)}


def test_compare_two_versions_on_labels_neither_trained_on(store):
    first, second = store["runs"]
    out = store["root"] / "compare.html"
    result = CliRunner().invoke(
        app, ["models", "compare", "1", "2", "--data", str(store["root"] / "full"), "--model-name", NAME,
              "--tracking-uri", store["uri"], "--out", str(out)], env=ENV,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    cutoff = observed_until(store["full"]) - pd.Timedelta(days=90)
    assert cutoff > max(first.trained_through, second.trained_through)
    assert f"latest matured cutoff {cutoff.date()}" in text and "Metrics at cutoff" in text
    assert "Largest feature-importance differences" in text
    # the metrics are each model's on the same customers and labels
    mlflow.set_tracking_uri(store["uri"])
    aucs = {}
    snapshots = {}
    for version in ("1", "2"):
        model = read_model_version(NAME, version)
        snapshots[version] = build_snapshot(store["full"], cutoff, feature_config_of(model))
        aucs[version] = model
    ids = snapshots["1"].index.intersection(snapshots["2"].index)
    y = build_labels(store["full"], cutoff, ids, horizon_days=90).to_numpy()
    for version, model in aucs.items():
        auc = roc_auc_score(y, model.predict_proba(snapshots[version].loc[ids]))
        assert f"{auc:.4f}" in text
    page = out.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2 and "Calibration" in page and "Lift" in page


def test_compare_by_alias_and_when_no_labels_are_left(store):
    args = ["models", "compare", "champion", "v1", "--model-name", NAME, "--tracking-uri", store["uri"]]
    result = CliRunner().invoke(app, [*args, "--data", str(store["root"] / "newer")], env=ENV)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "no matured labels neither model was trained on" in text and "Metrics at cutoff" not in text
    assert "Largest feature-importance differences" in text and "(champion)" in text
    bad = CliRunner().invoke(app, [*args[:2], "nosuch", "v1", *args[4:], "--data", str(store["root"] / "newer")])
    assert bad.exit_code == 2 and "has no version or alias 'nosuch'" in bad.output


def test_registered_model_served_by_mlflow_equals_churnlens_score(store, tmp_path):
    root, uri = store["root"], store["uri"]
    campaign = tmp_path / "campaign.parquet"
    scored = CliRunner().invoke(
        app, ["score", str(root / "full"), "--out", str(campaign), "--tracking-uri", uri,
              "--model", f"models:/{NAME}@champion", "--explain-selected"], env=ENV,
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    scores = pd.read_parquet(campaign).set_index("customer_id")["churn_probability"]
    mlflow.set_tracking_uri(uri)
    version = MlflowClient().get_model_version_by_alias(NAME, "champion").version
    model = read_model_version(NAME, version)
    snapshot = build_snapshot(store["full"], observed_until(store["full"]), feature_config_of(model))
    rows = signature_frame(snapshot, model.features, dict(model.metadata["categorical_levels"]))
    rows_json = tmp_path / "rows.json"
    rows_json.write_text(rows.to_json(orient="split", index=False).join(['{"dataframe_split": ', "}"]))
    predictions = tmp_path / "predictions.json"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    subprocess.run(
        [str(bin_dir / "mlflow"), "models", "predict", "-m", f"models:/{NAME}@champion", "-i", str(rows_json),
         "-t", "json", "-o", str(predictions), "--env-manager", "local"],
        env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    served = pd.DataFrame(json.loads(predictions.read_text())["predictions"])["churn_probability"].to_numpy()
    expected = scores.reindex(snapshot.index.astype(str)).to_numpy()
    assert len(served) == len(snapshot) > 100 and not np.isnan(expected).any()
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-12)


def test_the_churnlens_version_and_the_training_input_are_recorded(store):
    _, second = store["runs"]
    mlflow.set_tracking_uri(store["uri"])
    client = MlflowClient()
    run = client.get_run(second.run_id)
    assert run.data.tags["churnlens.version"] == churnlens.__version__
    version = client.get_model_version(NAME, second.model_version)
    assert version.tags["churnlens.version"] == churnlens.__version__
    stored = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{second.model_version}"))
    requirements = (stored / "requirements.txt").read_text().split()
    own = [r for r in requirements if "churnlens" in r]
    assert len(own) == 1
    if source_checkout() is not None:  # running from a source checkout: the wheel travels with the model
        assert own[0].endswith(".whl") and f"churnlens-{churnlens.__version__}-" in own[0]
        assert (stored / own[0]).is_file() and (stored / own[0]).read_bytes()[:2] == b"PK"
    else:  # installed from an index, which serves this exact version
        assert own[0] == f"churnlens=={churnlens.__version__}"
    assert f"churnlens.version: {churnlens.__version__}" in (stored / "MLmodel").read_text()
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "training_set"
    fingerprint = run.data.tags.get("data.hash") or run.data.params.get("data.hash")
    assert fingerprint and inputs[0].dataset.digest == fingerprint[:36]
    assert {t.key: t.value for t in inputs[0].tags}.get("mlflow.data.context") == "training"
