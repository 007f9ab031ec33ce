#!/usr/bin/env bash
# The main job end to end on simulated data:
# simulate -> validate -> train (MLflow, registry) -> score a campaign list -> explanation card.
set -euo pipefail
out=${1:-demo}
bin=.venv/bin
export MLFLOW_DISABLE_TELEMETRY=true
# MLflow store: $MLFLOW_TRACKING_URI if set, else sqlite:///mlflow.db here (artifacts in mlartifacts/).
$bin/churnlens simulate --customers 20000 --months 24 --seed 7 --truth-cutoffs 1 --out "$out/data"
$bin/churnlens validate "$out/data"
$bin/churnlens train "$out/data" --horizon 90 --step 30
$bin/churnlens models
$bin/churnlens score "$out/data" --out "$out/campaign.csv" --top 1000 --reasons 3
top=$($bin/python -c "import pandas as pd, sys; print(pd.read_csv(sys.argv[1]).sort_values('rank')['customer_id'].iloc[0])" "$out/campaign.csv")
$bin/churnlens explain "$out/data" --customer "$top" --html "$out/card_$top.html"
$bin/churnlens explain "$out/data" --customer "$top" --lang fr --html "$out/card_${top}_fr.html"
echo "Campaign list: $out/campaign.csv (reasons, rejects and drift beside it); cards: $out/card_$top*.html"
echo "Look at the run: make mlflow-ui  ->  http://127.0.0.1:5000"
echo "Open the web app on this campaign: $bin/churnlens serve --campaign $out/campaign.csv  ->  http://127.0.0.1:8000/"
