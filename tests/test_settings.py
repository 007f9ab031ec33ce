"""One settings tree: every setting lives in one typed section; the command line overrides the TOML
only for the options actually given (TOML alone, CLI alone, both)."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.cli.score_cmd import scoring_settings
from churnlens.cli.serve_cmd import api_settings
from churnlens.config import ApiSettings, ScoringSettings, config_from_dict, load_config
from churnlens.errors import InputError

#: Every [serving] setting that `churnlens score` also takes as an option: (field, TOML value,
#: CLI value). The two values differ from each other and from the default.
SCORE_SETTINGS = [
    ("lang", "fr", "en"),
    ("reasons", 2, 4),
    ("top", 10, 20),
    ("threshold", 0.3, 0.4),
    ("budget", 100.0, 200.0),
    ("cost_per_contact", 2.0, 3.0),
    ("save_rate", 0.3, 0.4),
    ("value_per_save", 50.0, 80.0),
    ("value_column", "spend_90d", "spend_30d"),
    ("explain_all", True, False),
    ("high_risk", 0.6, 0.7),
    ("medium_risk", 0.1, 0.15),
    ("psi_threshold", 0.2, 0.3),
    ("assign_actions", True, False),
    ("campaign_id", "spring", "summer"),
    ("holdout", 0.2, 0.3),
    ("holdout_seed", 1, 2),
    ("send_date", "2024-01-01", "2024-02-01"),
]


#: [serving] settings that are TOML only (no `score` option); the action rules are top-level
#: [[actions]] and the measured save rate is read from campaign reports (neither in [serving]).
TOML_ONLY = {"currency", "labels", "actions", "measured_save_rate"}


#: Settings with two values only (the default among them): tested on their own below.
TWO_VALUED = {"target"}


def test_every_serving_setting_is_covered():
    assert {f.name for f in fields(ScoringSettings)} - {s for s, _, _ in SCORE_SETTINGS} <= TOML_ONLY | TWO_VALUED


def test_target_toml_alone_cli_alone_and_both():
    toml = config_from_dict({"serving": {"target": "uplift"}})
    assert scoring_settings(config_from_dict({})).target == "risk"
    assert scoring_settings(toml).target == "uplift"
    assert scoring_settings(config_from_dict({}), target="uplift").target == "uplift"
    assert scoring_settings(toml, target="risk").target == "risk"
    with pytest.raises(InputError, match="--target must be risk or uplift"):
        scoring_settings(config_from_dict({}), target="profit")


@pytest.mark.parametrize(("name", "in_toml", "on_cli"), SCORE_SETTINGS, ids=[s for s, _, _ in SCORE_SETTINGS])
def test_toml_alone_cli_alone_and_both(name, in_toml, on_cli):
    default = getattr(ScoringSettings(), name)
    toml = config_from_dict({"serving": {name: in_toml}})
    cli = {name: on_cli}
    assert getattr(scoring_settings(config_from_dict({})), name) == default
    assert getattr(scoring_settings(toml), name) == in_toml  # TOML alone: the CLI's "not given" keeps it
    assert getattr(scoring_settings(config_from_dict({}), **cli), name) == on_cli  # CLI alone
    assert getattr(scoring_settings(toml, **cli), name) == on_cli  # both: the CLI wins


def test_a_rule_given_on_the_command_line_replaces_the_configured_one():
    toml = config_from_dict({"serving": {"budget": 100.0}})
    settings = scoring_settings(toml, top=5)
    assert settings.top == 5 and settings.budget is None
    with pytest.raises(InputError, match="choose one targeting rule, got --top and --threshold"):
        scoring_settings(toml, top=5, threshold=0.5)


def test_bad_values_name_the_option_or_the_section(tmp_path):
    with pytest.raises(InputError, match="^--lang must be en or fr, got 'de'$"):
        scoring_settings(config_from_dict({}), lang="de")
    path = tmp_path / "c.toml"
    path.write_text('[serving]\nlang = "de"\n')
    with pytest.raises(InputError, match=r"config section \[serving\]: lang must be en or fr, got 'de'"):
        load_config(path)
    path.write_text("[serving]\nlangue = 'fr'\n")
    with pytest.raises(InputError, match=r"config section \[serving\] has unknown keys: \['langue'\]"):
        load_config(path)


#: Every [api] setting that `churnlens serve` also takes as an option: (field, option, TOML, CLI).
SERVE_SETTINGS = [
    ("max_customers", "--max-customers", 7, 9),
    ("max_events_per_customer", "--max-events", 70, 90),
    ("max_body_mb", "--max-body-mb", 3.0, 4.5),
    ("read_timeout", "--read-timeout", 2.5, 7.0),
]
#: [api] settings that are TOML only.
API_TOML_ONLY = {"max_events_per_request", "min_body_kib_per_s"}


def test_every_api_setting_is_covered():
    assert {f.name for f in fields(ApiSettings)} - {s for s, _, _, _ in SERVE_SETTINGS} == API_TOML_ONLY


@pytest.mark.parametrize(("name", "option", "in_toml", "on_cli"), SERVE_SETTINGS, ids=[s[0] for s in SERVE_SETTINGS])
def test_api_settings_toml_alone_cli_alone_and_both(name, option, in_toml, on_cli):
    default = getattr(ApiSettings(), name)
    toml = config_from_dict({"api": {name: in_toml}}).api
    assert getattr(api_settings(ApiSettings()), name) == default
    assert getattr(api_settings(toml), name) == in_toml
    assert getattr(api_settings(ApiSettings(), **{name: on_cli}), name) == on_cli
    assert getattr(api_settings(toml, **{name: on_cli}), name) == on_cli
    with pytest.raises(InputError, match=f"^{option} must be "):  # a bad value names the option
        api_settings(toml, **{name: 0})


def test_bad_api_values_name_the_section(tmp_path):
    path = tmp_path / "c.toml"
    for text, message in (
        ("[api]\nread_timeout = 0\n", r"config section \[api\]: read_timeout must be a positive number, got 0"),
        ("[api]\nmax_customers = 1.5\n", r"config section \[api\]: max_customers must be a whole number >= 1"),
        ("[api]\nmax_customers = true\n", r"config section \[api\]: max_customers must be a whole number >= 1"),
        ("[api]\nmin_body_kib_per_s = 'fast'\n", r"min_body_kib_per_s must be a positive number, got 'fast'"),
        ("[api]\ntimeout = 3\n", r"config section \[api\] has unknown keys: \['timeout'\]"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            load_config(path)
    assert load_config(None).api == ApiSettings()
    assert ApiSettings(max_body_mb=2).max_body_bytes == 2 * 1024 * 1024


@pytest.fixture(scope="module")
def scored_store(tmp_path_factory):
    """A small simulation and a model registered in a sqlite store."""
    from churnlens.config import LightGBMParams
    from churnlens.data.io import load_tables, write_tables
    from churnlens.simulate import simulate
    from churnlens.training import TrainConfig, train_model

    root = tmp_path_factory.mktemp("settings")
    write_tables(simulate(n_customers=1500, months=16, seed=3).tables, root / "data", fmt="parquet")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tables, _ = load_tables(root / "data")
    train_model(tables, tracking_uri=uri, train_config=TrainConfig(lgbm=LightGBMParams(max_rounds=40)))
    return root, uri


def _summary(root, uri, out, *args):
    result = CliRunner().invoke(
        app, ["score", str(root / "data"), "--out", str(out), "--tracking-uri", uri, *args]
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.with_name(out.stem + ".summary.json").read_text())


def test_cli_score_reads_the_toml_and_given_options_win(scored_store, tmp_path):
    root, uri = scored_store
    config = tmp_path / "churnlens.toml"
    config.write_text('[serving]\nlang = "fr"\nreasons = 2\ntop = 7\nhigh_risk = 0.6\npsi_threshold = 0.2\n')
    toml_only = _summary(root, uri, tmp_path / "a.csv", "--config", str(config))
    assert (toml_only["lang"], toml_only["n_reasons"], toml_only["selected"]) == ("fr", 2, 7)
    assert toml_only["band_bounds"] == [0.6, 0.2] and toml_only["psi_threshold"] == 0.2
    cli_only = _summary(root, uri, tmp_path / "b.csv", "--lang", "fr", "--reasons", "2", "--top", "7")
    assert (cli_only["lang"], cli_only["n_reasons"], cli_only["selected"]) == ("fr", 2, 7)
    assert cli_only["band_bounds"] == [0.5, 0.2]
    both = _summary(root, uri, tmp_path / "c.csv", "--config", str(config), "--lang", "en", "--top", "3")
    assert (both["lang"], both["n_reasons"], both["selected"]) == ("en", 2, 3)
    assert both["band_bounds"] == [0.6, 0.2]


#: Every training setting `churnlens train` also takes as an option: (option, section, field,
#: TOML value, CLI value). The horizon lives only in [labels]; the rest in [training].
TRAIN_SETTINGS = [
    ("horizon", "labels", "horizon_days", 60, 45),
    ("step_days", "training", "step_days", 45, 20),
    ("tune_trials", "training", "tune_trials", 3, 5),
    ("seed", "training", "seed", 7, 9),
    ("purge", "training", "purge", False, True),
    ("backtests", "training", "backtests", 2, 4),
]


@pytest.mark.parametrize(("option", "section", "name", "in_toml", "on_cli"), TRAIN_SETTINGS,
                         ids=[s[0] for s in TRAIN_SETTINGS])
def test_training_settings_toml_alone_cli_alone_and_both(option, section, name, in_toml, on_cli):
    from churnlens.cli.train_cmd import training_settings

    def value(cfg):
        return getattr(getattr(cfg, section), name)

    default = value(config_from_dict({}))
    toml = config_from_dict({section: {name: in_toml}})
    assert value(training_settings(config_from_dict({}))) == default
    assert value(training_settings(toml)) == in_toml
    assert value(training_settings(config_from_dict({}), **{option: on_cli})) == on_cli
    assert value(training_settings(toml, **{option: on_cli})) == on_cli


def test_the_horizon_and_the_economics_each_live_in_one_section(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[training]\nhorizon_days = 60\n")
    with pytest.raises(InputError, match=r"\[training\] cannot set horizon_days: .*\[labels\] horizon_days"):
        load_config(path)
    path.write_text("[training.campaign]\nsave_rate = 0.3\n")
    with pytest.raises(InputError, match=r"\[training\] cannot set campaign: .*\[serving\] cost_per_contact"):
        load_config(path)
    path.write_text("[training.lgbm]\nleaves = 7\n")
    with pytest.raises(InputError, match=r"^config section \[training.lgbm\] has unknown keys: \['leaves'\]"):
        load_config(path)
    path.write_text("[training]\nstep_days = 45\n[training.lgbm]\nnum_leaves = 7\n")
    cfg = load_config(path)
    assert cfg.training.step_days == 45 and cfg.training.lgbm.num_leaves == 7


def test_estimator_defaults_are_the_training_sections():
    from churnlens.config import TrainConfig
    from churnlens.training import ChurnClassifier

    clf, section = ChurnClassifier(), TrainConfig()
    for name in ("seed", "threads", "class_weight", "calibration", "linear_base"):
        assert getattr(clf, name) == getattr(section, name), name


def test_cli_train_keeps_the_toml_horizon_and_step(tmp_path):
    """The reported bug: `train --config` with [labels] horizon_days = 60 and [training] step_days = 45
    trained at 90 / 30 because the CLI's defaults overwrote the file."""
    import mlflow

    from churnlens.data.io import write_tables
    from churnlens.simulate import simulate

    write_tables(simulate(n_customers=600, months=16, seed=5).tables, tmp_path / "data", fmt="parquet")
    config = tmp_path / "churnlens.toml"
    config.write_text("[labels]\nhorizon_days = 60\n[training]\nstep_days = 45\nbacktests = 1\n"
                      "[training.lgbm]\nmax_rounds = 20\n[serving]\ncost_per_contact = 3.0\nsave_rate = 0.3\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(app, ["train", str(tmp_path / "data"), "--config", str(config), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "horizon 60 d" in result.output
    mlflow.set_tracking_uri(uri)
    run = mlflow.search_runs(experiment_names=["churnlens"], max_results=1, output_format="list")[0]
    logged = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.json"))
    assert logged["labels"]["horizon_days"] == 60 and logged["training"]["step_days"] == 45
    cutoffs = pd.to_datetime(run.data.params["refit.cutoffs"].split(","))
    assert set(np.diff(cutoffs).astype("timedelta64[D]").astype(int)) == {45}
    assert logged["economics"] == {"cost_per_contact": 3.0, "save_rate": 0.3, "value_per_save": None}
