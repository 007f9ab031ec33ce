#!/usr/bin/env bash
# churnlens on real data: the UCI "Online Retail" transactions, end to end, in one command.
#
#   bash examples/online_retail/run.sh [OUT_DIR]        (from the repository root or anywhere)
#
# import transaction lines -> validate -> train (monthly cutoffs, 90-day horizon, MLflow in OUT_DIR)
# -> score at the day after the data's end (campaign list) -> three explanation cards (top 3)
# -> comparison with recency, RFM logistic regression and BG/NBD at the same backtest origins.
# The data is read in place (ONLINE_RETAIL=path overrides it); nothing is copied into the repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
out=${1:-out/online_retail}
source_file=${ONLINE_RETAIL:-../shared/data/online_retail/online_retail_uci.parquet}
model=online_retail
export MLFLOW_DISABLE_TELEMETRY=true

# A fresh clone: build the venv (make venv), and add the optional BG/NBD peer (lifetimes).
[ -x .venv/bin/churnlens ] || make venv
.venv/bin/python -c 'import lifetimes' 2>/dev/null || .venv/bin/python -m pip install --quiet -e '.[bgnbd]'
bin=.venv/bin
mkdir -p "$out"
out=$(cd "$out" && pwd)
tracking="sqlite:///$out/mlflow.db"

echo "== 1. import transaction lines -> purchases (lines without a customer are counted, not written)"
$bin/churnlens import-transactions "$source_file" --mapping "$here/mapping.toml" --out "$out/data"

echo "== 2. validate"
$bin/churnlens validate "$out/data"

echo "== 3. train: cutoffs every 30 days, 90-day horizon; backtest, then refit on every matured cutoff"
$bin/churnlens train "$out/data" --config "$here/churnlens.toml" --horizon 90 --step 30 \
    --tracking-uri "$tracking" --model-name "$model"

echo "== 4. score every active customer the day after the data ends -> campaign list"
$bin/churnlens score "$out/data" --model "models:/$model/latest" --tracking-uri "$tracking" \
    --top 200 --out "$out/campaign.csv"

echo "== 5. explanation cards of the three customers most likely to churn"
mkdir -p "$out/cards"
top3=$($bin/python -c 'import sys, pandas as pd
c = pd.read_csv(sys.argv[1], dtype={"customer_id": str}).sort_values("rank")
print(" ".join(c["customer_id"].head(3)))' "$out/campaign.csv")
for customer in $top3; do
    $bin/churnlens explain "$out/data" --customer "$customer" --model "models:/$model/latest" \
        --tracking-uri "$tracking" --html "$out/cards/customer_$customer.html"
done

echo "== 6. churnlens vs recency, RFM logistic regression and BG/NBD at the same backtest origins"
$bin/python "$here/compare.py" "$out/data" --tracking-uri "$tracking" --model-name "$model" --out "$out"

echo "Done. Campaign list: $out/campaign.csv; cards: $out/cards/; comparison: $out/comparison.md"
echo "MLflow UI: $bin/mlflow ui --backend-store-uri $tracking --host 127.0.0.1 --port 5000"
