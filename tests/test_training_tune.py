"""Tuning with Optuna on the simulator: TPE with pruning on the backtest's validation cutoffs (never a
test origin), each trial a nested MLflow run, the best parameters logged and shipped, the study resumed."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churnlens.config import LightGBMParams
from churnlens.training import TrainConfig, train_model
from churnlens.training.evaluation import TrainingRows, tuning_folds
from churnlens.training.split import backtest_origins
from churnlens.training.tune import SEARCH_SPACE, study_storage

pytest.importorskip("optuna")

SIM = {"n_customers": 1200, "months": 15, "seed": 21}
CONFIG = TrainConfig(backtests=2, lgbm=LightGBMParams(max_rounds=80, early_stopping_rounds=10))


@pytest.fixture(scope="module")
def tables():
    from churnlens.simulate import simulate

    return simulate(**SIM).tables


@pytest.fixture(scope="module")
def tuned(tables, tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('tune') / 'mlflow.db'}"
    first = train_model(tables, tracking_uri=uri, model_name="tuned", train_config=replace_trials(4))
    return uri, first


def replace_trials(n: int) -> TrainConfig:
    from dataclasses import replace

    return replace(CONFIG, tune_trials=n)


def test_each_trial_is_a_nested_run_and_the_best_parameters_ship(tuned):
    uri, result = tuned
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    parent = client.get_run(result.run_id)
    children = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
        output_format="list",
    )
    assert result.tuning.new_trials == 4 and len(children) == 4
    states = {c.data.tags["optuna.state"] for c in children}
    assert states <= {"complete", "pruned"} and "complete" in states
    for child in children:
        assert set(SEARCH_SPACE) <= set(child.data.params)
        history = client.get_metric_history(child.info.run_id, "validation_roc_auc")
        assert 1 <= len(history) <= 2 and all(0.5 < m.value <= 1 for m in history)  # one step per origin
    best = result.tuning
    assert parent.data.params["tuned.num_leaves"] == str(best.params.num_leaves)
    assert parent.data.metrics["tuning_best_validation_roc_auc"] == pytest.approx(best.best_value)
    complete = [c for c in children if c.data.tags["optuna.state"] == "complete"]
    assert best.best_value == pytest.approx(max(c.data.metrics["mean_validation_roc_auc"] for c in complete))
    # the evaluation and the refit use the tuned parameters
    assert result.evaluation.recipe.params.num_leaves == best.params.num_leaves
    assert result.num_leaves == best.params.num_leaves
    assert parent.data.params["training.lgbm.learning_rate"] == str(best.params.learning_rate)
    # trial 0 of a new study is the configured parameters
    trial0 = best.trials.set_index("number").loc[0]
    assert trial0["num_leaves"] == CONFIG.lgbm.num_leaves and trial0["learning_rate"] == CONFIG.lgbm.learning_rate
    assert "tuning_trials.json" in {a.path for a in client.list_artifacts(result.run_id)}


def test_the_study_resumes(tuned, tables):
    uri, first = tuned
    second = train_model(tables, tracking_uri=uri, model_name="tuned", train_config=replace_trials(2))
    assert second.tuning.study_name == first.tuning.study_name
    assert second.tuning.new_trials == 2 and len(second.tuning.trials) == 6
    assert second.tuning.storage == study_storage(uri) and second.tuning.storage.endswith("/optuna.db")
    assert second.tuning.best_value >= first.tuning.best_value


def test_tuning_never_sees_a_test_origin(tables):
    from churnlens.config import ChurnConfig
    from churnlens.features.labels import training_cutoffs
    from churnlens.training.source import LocalSource

    cutoffs = training_cutoffs(tables, horizon_days=90, step_days=30)
    origins = backtest_origins(cutoffs, horizon_days=90, count=2, purge=True)
    training_set = LocalSource(tables).training_set(cutoffs=cutoffs, horizon_days=90, config=ChurnConfig())
    folds = tuning_folds(TrainingRows(training_set, CONFIG), origins, cutoffs, CONFIG)
    tests = {o.test_cutoff for o in origins}
    assert len(folds) == len(origins)
    for (train, validation), origin in zip(folds, reversed(origins), strict=True):
        seen = set(train.index.get_level_values("cutoff")) | set(validation.index.get_level_values("cutoff"))
        assert not seen & tests
        assert set(validation.index.get_level_values("cutoff")) == {origin.validation_cutoff}
        assert max(seen) < origin.test_cutoff - pd.Timedelta(days=0)
