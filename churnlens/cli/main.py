"""Entry point of the ``churnlens`` console script."""

from __future__ import annotations

import os

import typer

from churnlens import __version__
from churnlens.cli import (
    campaign_cmd,
    explain_cmd,
    features_cmd,
    import_cmd,
    models_cmd,
    run_cmd,
    score_cmd,
    serve_cmd,
    simulate_cmd,
    train_cmd,
    uplift_cmd,
    validate_cmd,
)
from churnlens.cli.common import set_debug_option

# MLflow must never try to phone home from this offline tool.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

app = typer.Typer(
    name="churnlens",
    help="Point-in-time churn prediction for loyalty programs.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    # Help texts name TOML sections like [serving]: rich markup would swallow them.
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"churnlens {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of an error (same as CHURNLENS_DEBUG=1).", is_eager=True
    ),
    version: bool = typer.Option(
        False, "--version", help="Print the churnlens version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """Point-in-time churn prediction for loyalty programs."""
    set_debug_option(debug)


app.command("simulate")(simulate_cmd.simulate)
app.command("validate")(validate_cmd.validate)
app.command("features")(features_cmd.features)
app.command("import-transactions")(import_cmd.import_transactions)
app.command("train")(train_cmd.train)
app.add_typer(models_cmd.models_app, name="models")
app.command("train-uplift")(uplift_cmd.train_uplift)
app.command("score")(score_cmd.score)
app.command("explain")(explain_cmd.explain)
app.command("serve")(serve_cmd.serve)
app.command("campaign-report")(campaign_cmd.campaign_report)
app.command("run")(run_cmd.run)

if __name__ == "__main__":  # pragma: no cover
    app()
