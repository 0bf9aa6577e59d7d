#!/usr/bin/env bash
# Fair Cora results (issue 11): two arms tuned on validation with the same space, trials and seeds, then
# scored on fresh seeds (100-119, none used in tuning), a cross-check, and an alpha sweep.
# Every step is resumable: run this again after a kill and finished trials and runs are skipped.
# Needs the Cora files under $GRAPHSSL_DATA (or ./data). Hours on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
R=benchmarks/results
SEARCH="--dataset cora --config configs/spaces/cora-base.yaml --space configs/spaces/cora.yaml --trials 64 --seeds 3 --quiet"
graphssl tune $SEARCH --space configs/spaces/werank.yaml --out $R/tune-cora-werank
graphssl tune $SEARCH --werank 0 --out $R/tune-cora-bgrl
# Each arm's pick: its best validation trial whose full training takes <= 2 minutes alone on this machine.
python benchmarks/within_budget.py $R/tune-cora-werank $R/tune-cora-bgrl --budget 120 --out $R/cora-within-budget.json
# configs/cora.yaml and configs/cora-bgrl.yaml are those two trials' configs, committed with their commands.
key() { python -c "import yaml, json; print(json.dumps(yaml.safe_load(open('$1'))['werank']['$2']))"; }
alpha=$(key configs/cora.yaml alpha); squared=$(key configs/cora.yaml squared)
FRESH="--datasets cora --seeds 20 --first-seed 100 --quiet"
# The headline pair first (each arm as tuned), then the cross-check (each config with the other arm's alpha),
# which reuses the finished runs of the same folder.
graphssl bench $FRESH --config configs/cora.yaml --werank "$alpha" --out $R/cora-fair-werank-config
graphssl bench $FRESH --config configs/cora-bgrl.yaml --set werank.squared=$squared --werank 0 \
  --out $R/cora-fair-bgrl-config
graphssl bench $FRESH --config configs/cora.yaml --werank "$alpha" 0 --out $R/cora-fair-werank-config
graphssl bench $FRESH --config configs/cora-bgrl.yaml --set werank.squared=$squared --werank 0 "$alpha" \
  --out $R/cora-fair-bgrl-config
python benchmarks/paired_difference.py $R/cora-fair-werank-config "$alpha" $R/cora-fair-bgrl-config 0 \
  --out $R/cora-fair-paired.json
python benchmarks/paired_difference.py $R/cora-fair-werank-config "$alpha" $R/cora-fair-werank-config 0 \
  --out $R/cora-fair-paired-werank-config.json
python benchmarks/paired_difference.py $R/cora-fair-bgrl-config "$alpha" $R/cora-fair-bgrl-config 0 \
  --out $R/cora-fair-paired-bgrl-config.json
graphssl bench --datasets cora --seeds 10 --first-seed 100 --quiet --config configs/cora.yaml \
  --werank 0 1e-4 1e-3 1e-2 0.1 1 --out $R/cora-alpha-sweep
graphssl plot $R/cora-alpha-sweep --out $R/cora-alpha-sweep/plots
