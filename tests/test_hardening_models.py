"""Models are data, never code (issue 11, rows 2 and 9): manifest, no pickles, no code, damaged boosters."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import lightgbm as lgb
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.data.io import write_tables
from churnlens.model import Calibrator, ChurnModel
from churnlens.model_store import (
    MANIFEST_FILE,
    DamagedModelError,
    ModelFiles,
    ModelStoreError,
    check_booster_text,
    model_from_files,
    read_model_dir,
    save_model,
    write_manifest,
)
from churnlens.serving.loader import load_model

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
FEATURES = ["recency", "spend", "channel"]


def _model() -> ChurnModel:
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "recency": rng.gamma(2, 30, n),
            "spend": rng.gamma(2, 100, n),
            "channel": pd.Categorical(rng.choice(["store", "web", "app"], n), categories=["app", "store", "web"]),
        }
    )
    y = (frame["recency"] / 60 + (frame["channel"] == "web") + rng.normal(size=n) > 1.5).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 5, "verbose": -1, "seed": 1},
        lgb.Dataset(frame, y, categorical_feature=["channel"]),
        num_boost_round=12,
    )
    metadata = {"features": FEATURES, "categorical_levels": {"channel": ["app", "store", "web"]}}
    return ChurnModel.from_parts(booster, Calibrator(method="platt", a=1.1, b=-0.2), metadata)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    model = _model()
    path = save_model(model, root / "model", pip_requirements=["churnlens"])
    frame = pd.DataFrame({"recency": [5.0, 120.0], "spend": [300.0, 20.0], "channel": ["web", "store"]})
    return {"root": root, "model": model, "path": path, "frame": frame}


@pytest.fixture
def copy(saved, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(saved["path"], target)
    return target


class Payload:
    """Unpickling this writes a marker file: proof that a pickle from the store ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the payload ran"))


def test_a_saved_model_reads_back_as_data_and_still_loads_with_pyfunc(saved):
    model = read_model_dir(saved["path"])
    expected = saved["model"].predict_proba(saved["frame"])
    np.testing.assert_allclose(model.predict_proba(saved["frame"]), expected)
    assert model.booster.pandas_categorical == [["app", "store", "web"]]
    # MLflow users keep pyfunc
    pyfunc = mlflow.pyfunc.load_model(str(saved["path"]))
    np.testing.assert_allclose(pyfunc.predict(saved["frame"])["churn_probability"], expected)
    manifest = json.loads((saved["path"] / MANIFEST_FILE).read_text())
    assert {"MLmodel", "model_code.py", "artifacts/booster.txt", "artifacts/metadata.json"} <= set(manifest["files"])


def test_a_pickle_added_to_the_directory_is_refused_and_never_runs(copy, tmp_path):
    marker = tmp_path / "ran"
    (copy / "python_model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ModelStoreError, match=r"python_model\.pkl is not in its manifest"):
        read_model_dir(copy)
    write_manifest(copy)  # even listed in a (forged) manifest
    with pytest.raises(ModelStoreError, match=r"python_model\.pkl is a \.pkl file"):
        read_model_dir(copy)
    (copy / "python_model.pkl").rename(copy / "weights.bin")  # any name: the bytes are a pickle
    write_manifest(copy)
    with pytest.raises(ModelStoreError, match=r"weights\.bin holds a pickle"):
        read_model_dir(copy)
    assert not marker.exists()


def test_a_classic_pickled_pyfunc_model_is_refused(tmp_path):
    class Classic(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.pyfunc.save_model(str(tmp_path / "classic"), python_model=Classic(), pip_requirements=["churnlens"])
    with pytest.raises(ModelStoreError, match="no churnlens_manifest.json"):
        read_model_dir(tmp_path / "classic")
    write_manifest(tmp_path / "classic")
    with pytest.raises(ModelStoreError, match=r"python_model\.pkl is a \.pkl file"):
        read_model_dir(tmp_path / "classic")


def test_an_edited_model_code_file_is_refused(copy):
    code = copy / "model_code.py"
    code.write_text(code.read_text() + "\nimport os; os.system('touch /tmp/pwned')\n")
    with pytest.raises(ModelStoreError, match=r"model_code\.py does not match its manifest"):
        read_model_dir(copy)


@pytest.mark.parametrize(
    "extra, message",
    [
        ("helper.py", r"helper\.py is a \.py file"),
        ("code/churnlens/model.py", r"code/churnlens/model\.py sits in code/"),
        ("lib.so", r"lib\.so is a \.so file"),
        ("run", "is an executable program"),
        # only churnlens's own wheel, where MLflow's requirements point, is data; any other wheel is code
        ("artifacts/other-1.0-py3-none-any.whl", r"other-1\.0-py3-none-any\.whl is a \.whl file"),
        ("churnlens-0.1.0-py3-none-any.whl", r"churnlens-0\.1\.0-py3-none-any\.whl is a \.whl file"),
    ],
)
def test_other_code_is_refused_even_when_listed_in_the_manifest(copy, extra, message):
    path = copy / extra
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!/bin/sh\necho hi\n" if extra == "run" else b"print('hi')\n")
    write_manifest(copy)
    with pytest.raises(ModelStoreError, match=message):
        read_model_dir(copy)


def test_churnlens_own_wheel_is_accepted_as_data_when_listed(copy):
    wheel = copy / "artifacts" / "churnlens-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04" + b"\0" * 60)  # a zip: MLflow's pip installs it, churnlens never opens it
    write_manifest(copy)
    read_model_dir(copy)
    wheel.write_bytes(b"print('hi')\n")  # not a zip under that name: refused
    write_manifest(copy)
    with pytest.raises(ModelStoreError, match=r"\.whl file"):
        read_model_dir(copy)


def test_manifest_mismatches_are_refused_naming_the_file(copy):
    (copy / "artifacts" / "metadata.json").write_text('{"features": ["recency"]}')
    with pytest.raises(ModelStoreError, match=r"artifacts/metadata\.json does not match its manifest"):
        read_model_dir(copy)


def test_missing_files_links_and_manifests_are_refused(copy, tmp_path):
    (copy / "conda.yaml").unlink()
    with pytest.raises(ModelStoreError, match=r"conda\.yaml of its manifest is missing"):
        read_model_dir(copy)
    write_manifest(copy)
    (copy / "artifacts" / "booster.txt").rename(tmp_path / "elsewhere.txt")
    (copy / "artifacts" / "booster.txt").symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(ModelStoreError, match="is a symbolic link"):
        read_model_dir(copy)
    (copy / MANIFEST_FILE).unlink()
    with pytest.raises(ModelStoreError, match="no churnlens_manifest.json"):
        read_model_dir(copy)
    (copy / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(DamagedModelError, match="churnlens_manifest.json is damaged"):
        read_model_dir(copy)


def test_download_metadata_written_by_mlflow_is_accepted(copy, saved):
    (copy / "registered_model_meta").write_text("model_name: churnlens\nmodel_version: '3'\n")
    np.testing.assert_allclose(
        read_model_dir(copy).predict_proba(saved["frame"]), saved["model"].predict_proba(saved["frame"])
    )


# --------------------------------------------------------------------------- damaged boosters

_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from churnlens.model_store import DamagedModelError, ModelFiles, model_from_files

    root = Path(sys.argv[1])
    booster = (root / "artifacts" / "booster.txt").read_bytes()
    others = {k: (root / "artifacts" / f"{k}.json").read_bytes() for k in ("calibrator", "metadata")}
    cases = [booster[:cut] for cut in range(0, len(booster), max(len(booster) // 400, 1))]
    cases += [b"", b"tree\\n", b"\\x00" * 100, booster.replace(b"left_child=", b"left_child=9 ", 1),
              booster.replace(b"split_feature=", b"split_feature=77 ", 1),
              booster.replace(b"tree_sizes=", b"tree_sizes=9", 1), booster.replace(b"Tree=3", b"Tree=9", 1),
              booster.replace(b"num_leaves=", b"num_leaves=1", 1), booster + b"garbage"]
    outcomes = []
    for data in cases:
        try:
            model_from_files(ModelFiles(data, others["calibrator"], others["metadata"], None), where="m")
            outcomes.append("ok")
        except DamagedModelError as exc:
            assert "model file m/booster.txt is damaged" in str(exc) or "does not belong" in str(exc), exc
            outcomes.append("damaged")
    print(json.dumps(outcomes))
    """
)


def test_damaged_boosters_are_refused_cleanly_and_never_crash_the_process(saved):
    # in a child process: were LightGBM to crash (SIGSEGV/SIGABRT) the test fails instead of pytest
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(saved["path"])], capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 0, child.stderr[-2000:]
    outcomes = json.loads(child.stdout.strip().splitlines()[-1])
    assert len(outcomes) > 400
    # the full text is the only truncation that reads; a cut in the parameters section is damage too
    assert outcomes[0] == "damaged" and outcomes.count("ok") <= 1, outcomes


def test_check_booster_text_names_the_problem(saved):
    text = (saved["path"] / "artifacts" / "booster.txt").read_text()
    check_booster_text(text)
    with pytest.raises(ValueError, match="empty"):
        check_booster_text("")
    with pytest.raises(ValueError, match="truncated"):
        check_booster_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="truncated"):
        check_booster_text(text[:-40])


def test_a_damaged_booster_in_a_directory_is_a_clean_error(copy):
    booster = copy / "artifacts" / "booster.txt"
    booster.write_text(booster.read_text()[:1500])
    write_manifest(copy)  # the manifest matches: the file was damaged before logging
    with pytest.raises(DamagedModelError, match=r"model file .*artifacts/booster\.txt is damaged"):
        read_model_dir(copy)
    booster.write_bytes(b"")
    write_manifest(copy)
    with pytest.raises(DamagedModelError, match="is damaged: it is empty"):
        read_model_dir(copy)


def test_damaged_json_files_are_named(saved):
    files = {k: (saved["path"] / "artifacts" / f"{k}.json").read_bytes() for k in ("calibrator", "metadata")}
    booster = (saved["path"] / "artifacts" / "booster.txt").read_bytes()
    with pytest.raises(DamagedModelError, match=r"m/metadata\.json is damaged"):
        model_from_files(ModelFiles(booster, files["calibrator"], b'{"features": "x"}', None), where="m")
    with pytest.raises(DamagedModelError, match=r"m/calibrator\.json is damaged"):
        model_from_files(ModelFiles(booster, b'{"method": "exec"}', files["metadata"], None), where="m")
    other = json.loads(files["metadata"])
    other["features"] = ["a", "b", "c"]
    with pytest.raises(DamagedModelError, match="does not belong"):
        model_from_files(ModelFiles(booster, files["calibrator"], json.dumps(other).encode(), None), where="m")


# --------------------------------------------------------------------------- through the store and the CLI


def test_a_logged_model_carries_its_manifest_and_a_tampered_store_is_refused(tmp_path):
    from churnlens.tracking import configure_mlflow
    from churnlens.training.mlflow_log import ensure_experiment, log_churn_model

    model = _model()
    uri = configure_mlflow(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run(experiment_id=ensure_experiment("hardening", uri)):
        model_uri = log_churn_model(model, pd.DataFrame({"recency": [1.0], "spend": [2.0], "channel": ["web"]}))
    mlflow.register_model(model_uri, "churnlens")
    loaded = load_model("models:/churnlens/1", tracking_uri=uri)
    frame = pd.DataFrame({"recency": [5.0], "spend": [300.0], "channel": ["web"]})
    np.testing.assert_allclose(loaded.model.predict_proba(frame), model.predict_proba(frame))
    stored = next((tmp_path / "mlartifacts").rglob("booster.txt"))
    assert (stored.parent.parent / MANIFEST_FILE).is_file()
    stored.write_text(stored.read_text().replace("shrinkage=1", "shrinkage=9", 1))
    with pytest.raises(ModelStoreError, match=r"artifacts/booster\.txt does not match its manifest"):
        load_model("models:/churnlens/1", tracking_uri=uri)


def _data_dir(root: Path) -> Path:
    from churnlens.simulate import simulate

    data = root / "data"
    write_tables(simulate(n_customers=60, months=14, seed=2).tables, data)
    return data


def test_score_refuses_a_tampered_or_damaged_model_with_exit_2_and_runs_nothing(saved, tmp_path):
    data = _data_dir(tmp_path)
    marker = tmp_path / "ran"
    pickled = tmp_path / "pickled"
    shutil.copytree(saved["path"], pickled)
    (pickled / "python_model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    write_manifest(pickled)
    damaged = tmp_path / "damaged"
    shutil.copytree(saved["path"], damaged)
    booster = damaged / "artifacts" / "booster.txt"
    booster.write_text(booster.read_text()[:900])
    write_manifest(damaged)
    for model, message in ((pickled, "python_model.pkl"), (damaged, "is damaged")):
        run = CliRunner().invoke(
            app,
            ["score", str(data), "--model", str(model), "--out", str(tmp_path / "out" / "c.csv"),
             "--tracking-uri", f"sqlite:///{tmp_path / 'unused.db'}"],
        )  # fmt: skip
        assert run.exit_code == 2, run.output
        assert message in run.output and "Traceback" not in run.output
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_champion_serving_would_refuse_is_replaced_by_a_verified_model(tmp_path):
    """A champion logged without a manifest (an older churnlens) or tampered with cannot be served
    any more: the next verified model takes its place instead of staying challenger for ever."""
    from mlflow.tracking import MlflowClient

    from churnlens.model import MODEL_CODE
    from churnlens.tracking import configure_mlflow
    from churnlens.training.mlflow_log import ModelEvidence, ensure_experiment, log_churn_model, register_and_promote

    model = _model()
    frame = pd.DataFrame({"recency": [5.0, 200.0, 30.0], "spend": [300.0, 20.0, 50.0], "channel": ["web"] * 3})
    uri = configure_mlflow(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run(experiment_id=ensure_experiment("hardening", uri)):
        with mlflow.utils.file_utils.TempDir() as parts:
            old = mlflow.pyfunc.log_model(
                name="model", python_model=str(MODEL_CODE), artifacts=model.save_artifacts(parts.path()),
                pip_requirements=["churnlens"],
            )  # fmt: skip
        version = mlflow.register_model(old.model_uri, "churnlens").version
        MlflowClient().set_registered_model_alias("churnlens", "champion", version)
        new_uri = log_churn_model(model, frame.head(1))
        evidence = ModelEvidence(trained_through=pd.Timestamp("2023-12-31"), evaluation="backtest", evaluation_auc=0.6)
        decision = register_and_promote(new_uri, "churnlens", evidence=evidence, origins=[])
    assert decision.alias == "champion" and "cannot be served" in decision.reason
    assert load_model(tracking_uri=uri).version == decision.version
