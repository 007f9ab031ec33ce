#!/bin/bash
# Install size of `pip install churnlens` and of each extra, each in a fresh venv under $OUT
# (default /tmp/churnlens_sizes). Prints: extra, size of the venv minus an empty venv, install time.
# Sizes in README "Install" were measured with: bash scripts/install_sizes.sh
set -e
OUT=${OUT:-/tmp/churnlens_sizes}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
rm -rf "$OUT/dist" && python3 -m pip wheel --no-deps -q -w "$OUT/dist" . 2>/dev/null
WHEEL=$(ls "$OUT"/dist/churnlens-*.whl)
rm -rf "$OUT/empty" && python3 -m venv "$OUT/empty"
base=$(du -sk "$OUT/empty" | cut -f1)
for extra in "" tune bench dask bgnbd; do
  v="$OUT/venv_${extra:-core}"
  rm -rf "$v"; python3 -m venv "$v"
  start=$(date +%s)
  if [ -z "$extra" ]; then "$v/bin/pip" install -q "$WHEEL" 2>/dev/null
  else "$v/bin/pip" install -q "churnlens[$extra] @ file://$WHEEL" 2>/dev/null; fi
  end=$(date +%s)
  size=$(du -sk "$v" | cut -f1)
  echo "${extra:-core} $(( (size-base)/1024 )) MB $((end-start)) s"
  rm -rf "$v"
done
