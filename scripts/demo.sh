#!/usr/bin/env bash
# The main job end to end on simulated data: simulate -> validate -> train (MLflow) -> score.
set -euo pipefail
out=${1:-demo}
bin=.venv/bin
export MLFLOW_DISABLE_TELEMETRY=true
$bin/churnlens simulate --customers 20000 --months 24 --seed 7 --out "$out/data"
$bin/churnlens validate "$out/data"
