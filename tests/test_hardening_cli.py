"""Errors at the command line (issue 11, rows 3, 8 and 13): exit 2 for bad input, exit 1 for the rest."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli import validate_cmd
from churnlens.cli.main import app

runner = CliRunner()


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_bad_input_is_exit_2_with_one_line(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "does not exist" in _one_error_line(result.output)


@pytest.mark.parametrize(
    "bug",
    [KeyError("customer_id"), ValueError("cannot reshape"), ZeroDivisionError("division by zero"), TypeError("x")],
)
def test_an_internal_bug_is_exit_1_with_one_line_and_a_hint(tmp_path, monkeypatch, bug):
    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(validate_cmd, "load_data", broken)
    monkeypatch.delenv("CHURNLENS_DEBUG", raising=False)
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert f"internal error ({type(bug).__name__})" in line and "--debug" in line
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["--step", "0"], None, "training.step_days must be positive"),
        ([], "[training]\nstep_days = '30'\n", "config section [training]: step_days must be a number, got '30'"),
        ([], "[training]\npurge = 'yes'\n", "config section [training]: purge must be true or false, got 'yes'"),
        ([], "[training]\nlinear_base = 'deep'\n", "training.linear_base must be rfm, auto or none, got 'deep'"),
        ([], "[training.lgbm]\nleaves = 7\n", "config section [training.lgbm] has unknown keys: ['leaves']"),
        ([], "[training.lgbm]\nnum_leaves = '7'\n", "config section [training.lgbm]: num_leaves must be a number"),
        ([], "[training]\nhorizon_days = 90\n", "config section [training] cannot set horizon_days"),
    ],
)
def test_bad_training_options_and_config_are_input_errors_row_13(tmp_path, args, config, message):
    """Row 13: bad input raises InputError (exit 2, one line); a plain ValueError is a bug (exit 1, above)."""
    if config is not None:
        (tmp_path / "c.toml").write_text(config)
        args = [*args, "--config", str(tmp_path / "c.toml")]
    result = runner.invoke(app, ["train", str(tmp_path), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(_one_error_line(result.output).split())


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNLENS_DEBUG", "1")
    result = runner.invoke(app, ["validate", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "Traceback" in result.output  # bad input keeps its status

    def broken(*args, **kwargs):
        raise KeyError("customer_id")

    monkeypatch.setattr(validate_cmd, "load_data", broken)
    monkeypatch.setenv("CHURNLENS_DEBUG", "0")  # restored after the test: --debug sets it
    result = runner.invoke(app, ["--debug", "validate", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" in result.output and "in broken" in result.output


def test_an_oserror_is_exit_1_naming_the_path(purchases_model, tmp_path):
    out = tmp_path / "snap.csv"
    out.mkdir()  # the output path is a folder
    result = runner.invoke(app, ["features", str(purchases_model["data"]), "--cutoff", "2024-01-01", "--out", str(out)])
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert str(out) in line and "directory" in line


def test_features_refuses_to_write_over_an_input(purchases_model, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(purchases_model["data"], data)
    before = (data / "purchases.parquet").read_bytes()
    result = runner.invoke(
        app, ["features", str(data), "--cutoff", "2024-01-01", "--out", str(data / "purchases.parquet")]
    )
    assert result.exit_code == 2 and "inside the input directory" in result.output
    assert (data / "purchases.parquet").read_bytes() == before


def _score(data: Path, model: Path, out: Path, cwd: Path) -> SimpleNamespace:
    """``churnlens score`` in this process: ``returncode`` and ``stderr`` (all output) as from a subprocess."""
    tracking = f"sqlite:///{cwd / 'unused.db'}"
    result = runner.invoke(
        app, ["score", str(data), "--model", str(model), "--out", str(out), "--tracking-uri", tracking]
    )
    return SimpleNamespace(returncode=result.exit_code, stderr=result.output)


def test_score_writes_a_campaign_with_formulas_defused(purchases_model, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    purchases = pd.read_parquet(purchases_model["data"] / "purchases.parquet")
    first = purchases["customer_id"].iloc[0]
    purchases["customer_id"] = purchases["customer_id"].replace({first: '=HYPERLINK("http://x","y")'})
    purchases.to_parquet(data / "purchases.parquet", index=False)
    run = _score(data, purchases_model["path"], tmp_path / "out" / "campaign.csv", tmp_path)
    assert run.returncode == 0, run.stderr
    ids = pd.concat(
        [
            pd.read_csv(tmp_path / "out" / name, dtype=str)["customer_id"]
            for name in ("campaign.csv", "campaign.rejects.csv")
        ]
    )
    assert '\'=HYPERLINK("http://x","y")' in set(ids)
    assert not ids.str.startswith("=").any()


# The two tests below need the calls the lead adds to `churnlens score` (cli/score_cmd.py and
# serving/batch.write_outputs, being rewritten): strict xfail, so they fail once wired until unmarked.
def test_score_refuses_to_overwrite_its_input_row_3(purchases_model, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    purchases = pd.read_parquet(purchases_model["data"] / "purchases.parquet")
    purchases.to_csv(data / "purchases.csv", index=False)
    before = (data / "purchases.csv").read_bytes()
    run = _score(data, purchases_model["path"], data / "purchases.csv", tmp_path)
    assert (data / "purchases.csv").read_bytes() == before
    assert run.returncode == 2 and "input" in run.stderr


def test_score_with_an_output_that_is_a_directory_writes_nothing_row_8(purchases_model, tmp_path):
    out = tmp_path / "out"
    (out / "campaign.rejects.csv").mkdir(parents=True)
    run = _score(purchases_model["data"], purchases_model["path"], out / "campaign.csv", tmp_path)
    assert run.returncode == 1 and str(out / "campaign.rejects.csv") in run.stderr
    assert "Traceback" not in run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["campaign.rejects.csv"]  # nothing half-written
