"""Entry point of the ``churnlens`` console script."""

from __future__ import annotations

import os

import typer

from churnlens.cli import simulate_cmd, validate_cmd

# MLflow must never try to phone home from this offline tool.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

app = typer.Typer(
    name="churnlens",
    help="Point-in-time churn prediction for loyalty programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("simulate")(simulate_cmd.simulate)
app.command("validate")(validate_cmd.validate)

if __name__ == "__main__":  # pragma: no cover
    app()
