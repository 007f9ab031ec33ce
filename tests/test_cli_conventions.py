"""The command line's conventions: --help of every command (snapshots, bracketed names kept), --version,
choices of --lang/--engine/--log-level, shell completion, explain in French and every validation
problem of a file reported at once."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import churnlens
from churnlens.cli.main import app

SNAPSHOTS = Path(__file__).parent / "snapshots" / "help"
#: Set to rewrite the snapshots after a deliberate change of the help texts.
UPDATE_ENV = "CHURNLENS_UPDATE_SNAPSHOTS"
#: A fixed terminal so the help wraps the same way everywhere (click caps the width at 80).
ENV = {"COLUMNS": "200", "TERM": "dumb"}


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple]:
    """Every command and sub-command of the CLI (typer vendors its own click: no isinstance)."""
    found = [(path, group)]
    if hasattr(group, "commands"):
        for name in sorted(group.commands):
            found += _commands(group.commands[name], (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_command_is_listed():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "train", "score", "explain", "serve", "validate", "import-transactions", "models"} <= names


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "churnlens" for p, _ in COMMANDS])
def test_help_snapshot_keeps_bracketed_names(path, command):
    result = CliRunner().invoke(app, [*path, "--help"], env=ENV)
    assert result.exit_code == 0, result.output
    # every [section] or [choice] written in a help text reaches the screen (no markup eats it)
    helps = [getattr(p, "help", None) or "" for p in command.params] + [command.help or ""]
    bracketed = {m for text in helps for m in re.findall(r"\[[^\]\s]+(?:\s[^\]]+)?\]", text)}
    for name in bracketed:
        assert _flat(name) in _flat(result.output), f"{name} missing from `{' '.join(path)} --help`"
    snapshot = SNAPSHOTS / f"{'_'.join(path) or 'churnlens'}.txt"
    if os.environ.get(UPDATE_ENV):
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(result.output, encoding="utf-8")
    assert snapshot.is_file(), f"no snapshot {snapshot.name}: run the tests once with {UPDATE_ENV}=1"
    assert result.output == snapshot.read_text(encoding="utf-8")


def test_help_shows_the_bracketed_names_the_issue_quotes():
    train = _flat(CliRunner().invoke(app, ["train", "--help"], env=ENV).output)
    assert "TOML config: [features], [labels], [training], [columns.<table>]." in train
    imported = _flat(CliRunner().invoke(app, ["import-transactions", "--help"], env=ENV).output)
    assert "with a [transactions] section" in imported


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"churnlens {churnlens.__version__}"
    from importlib.metadata import version

    assert churnlens.__version__ == version("churnlens")  # one version: the package's metadata agrees


@pytest.mark.parametrize(
    "args,choices",
    [
        (["score", "--help"], ["<en|fr>", "<local|dask>"]),
        (["explain", "--help"], ["<en|fr>"]),
        (["features", "--help"], ["<en|fr>", "<local|dask>"]),
        (["train", "--help"], ["<local|dask>"]),
        (["campaign-report", "--help"], ["<en|fr>"]),
        (["serve", "--help"], ["<critical|error|warning|info|debug|trace>"]),
    ],
)
def test_choices_are_listed_in_help(args, choices):
    output = CliRunner().invoke(app, args, env=ENV).output
    for choice in choices:
        assert choice in output


@pytest.mark.parametrize(
    "args,option",
    [
        (["features", "--catalog", "--lang", "de"], "--lang"),
        (["serve", "--log-level", "loud"], "--log-level"),
        (["train", "somewhere", "--engine", "spark"], "--engine"),
    ],
)
def test_a_value_outside_the_choices_is_a_usage_error(args, option):
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code == 2
    assert option in result.output and "is not one of" in result.output


def test_completion_can_be_shown_and_completes_choices():
    result = CliRunner().invoke(app, ["--show-completion", "bash"], env={**ENV, "SHELL": "/bin/bash"})
    assert result.exit_code == 0, result.output
    assert "_CHURNLENS_COMPLETE" in result.output and "complete" in result.output
    # what the installed script asks: the values completing `churnlens features --lang `
    completion = CliRunner().invoke(
        app,
        [],
        prog_name="churnlens",
        env={
            **ENV,
            "_CHURNLENS_COMPLETE": "complete_bash",
            "COMP_WORDS": "churnlens features --lang ",
            "COMP_CWORD": "3",
        },
    )
    assert completion.output.split() == ["en", "fr"]


def test_explain_headers_follow_lang(purchases_model):
    tables = purchases_model["tables"]
    customer = tables.purchases["customer_id"].iloc[-1]
    args = ["explain", str(purchases_model["data"]), "--customer", customer, "--model", str(purchases_model["path"])]
    english = CliRunner().invoke(app, args, env=ENV)
    french = CliRunner().invoke(app, [*args, "--lang", "fr"], env=ENV)
    assert english.exit_code == 0, english.output
    assert french.exit_code == 0, french.output
    assert "effect on churn probability" in english.output and f"Customer {customer} at" in english.output
    fr = _flat(french.output)
    assert "effet sur la probabilité de départ" in fr and f"Client {customer} au" in fr
    assert "effect on churn probability" not in french.output and "reason" not in french.output


def test_validation_reports_every_hard_problem_of_a_table(tmp_path):
    rows = 30
    purchases = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(rows)],
            "timestamp": ["2024-05-02"] * (rows - 2) + ["yesterday", "2024-13-45"],
            "amount": ["abc"] * 25 + ["1.5"] * 5,
        }
    )
    support = pd.DataFrame({"customer_id": ["c1", "c2"], "timestamp": ["2024-05-01", "2024-05-02"], "csat": [9, 3]})
    purchases.to_csv(tmp_path / "purchases.csv", index=False)
    support.to_csv(tmp_path / "support_interactions.csv", index=False)
    result = CliRunner().invoke(app, ["validate", str(tmp_path)], env=ENV)
    assert result.exit_code == 2
    out = _flat(result.output)
    assert "3 problems in the input tables" in out
    assert "table 'purchases', column 'timestamp': is not a valid timestamp" in out
    assert "table 'purchases', column 'amount': is not a number (25 rows)" in out
    assert "table 'support_interactions', column 'csat': is outside the allowed range 1-5 (1 row)" in out
    amount = out[out.index("column 'amount'") :]
    shown = re.findall(r"row (\d+): 'abc'", amount)
    assert shown == [str(i) for i in range(1, 21)]  # 20 rows shown per column, the count says 25
    assert "is missing" not in out  # unreadable values are not reported a second time as missing


def test_validation_error_keeps_the_first_problem_for_callers():
    from churnlens.data import DataValidationError, validate_tables

    frame = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["x", "2024-01-01"], "amount": [1.0, "y"]})
    with pytest.raises(DataValidationError) as caught:
        validate_tables({"purchases": frame})
    error = caught.value
    assert [p.column for p in error.problems] == ["timestamp", "amount"]
    assert (error.table, error.column, error.rows) == ("purchases", "timestamp", ["row 1: 'x'"])
