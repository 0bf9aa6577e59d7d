#!/usr/bin/env bash
# WERank across SSL objectives on Cora (issue 14): for each method, two arms tuned on validation with the same
# space, trials and seeds (alpha = 0, and alpha searched), then scored on fresh seeds (none used in tuning) with a
# paired difference. Every step is resumable: run this again after a kill and finished trials and runs are
# skipped. Needs the Cora files under $GRAPHSSL_DATA (or ./data). Days on 2 CPU cores (each method's step cost:
# README, 'What a step costs'); METHODS (default all four, the cheapest first so that whole
# rows finish soonest) picks methods, and without bgrl TRIALS (default 64) and SEEDS (default 3) shrink the
# searches.
#
# BGRL's row is benchmarks/cora_fair.sh's headline pair, read here rather than trained again (run cora_fair.sh
# first): graphssl's Cora defaults, each arm's best validation trial of 64 x 3 whose training takes <= 2 minutes
# (configs/cora.yaml, configs/cora-bgrl.yaml), on 20 fresh seeds 100-119 (cora-fair-paired.json). GRACE, VICReg
# and CCA-SSG start from their official Cora setups (configs/cora-<method>.yaml), search
# configs/spaces/cora-shared.yaml with their own keys (configs/spaces/<method>.yaml), and take each arm's best
# validation trial (best.yaml, no time budget) to 10 fresh seeds 100-109, then, as cross-checks chosen by nothing,
# each arm's setup with the other arm's WERank setting on the same seeds. The table says each row's seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
R=benchmarks/results
TRIALS=${TRIALS:-64}
SEEDS=${SEEDS:-3}
S=configs/spaces
fail() { echo "methods_fair.sh: $*" >&2; exit 2; }
if [[ " ${METHODS:-bgrl} " == *" bgrl "* ]]; then  # checked before any other method's days of training
  [ -f $R/cora-fair-paired.json ] || fail "$R/cora-fair-paired.json is missing; run benchmarks/cora_fair.sh" \
    "first (BGRL's row is its headline pair)"
  [ "$TRIALS/$SEEDS" = 64/3 ] || fail "TRIALS=$TRIALS SEEDS=$SEEDS: BGRL's row comes from cora_fair.sh's" \
    "64 x 3 searches, so the other methods need the same budget; leave bgrl out of METHODS to shrink them"
fi
key() { python -c "import yaml, json; print(json.dumps(yaml.safe_load(open('$1'))['werank']['$2']))"; }
for method in ${METHODS:-bgrl cca-ssg grace vicreg}; do
  [ "$method" = bgrl ] && continue  # its row is read below from cora_fair.sh's cora-fair-paired.json
  base=configs/cora-$method.yaml; spaces="--space $S/cora-shared.yaml --space $S/$method.yaml"
  plain=$R/tune-cora-$method-plain; werank=$R/tune-cora-$method-werank
  SEARCH="--dataset cora --config $base $spaces --trials $TRIALS --seeds $SEEDS --quiet"
  graphssl tune $SEARCH --space $S/werank.yaml --out "$werank"
  graphssl tune $SEARCH --werank 0 --out "$plain"
  FRESH="--datasets cora --seeds 10 --first-seed 100 --quiet"
  graphssl bench $FRESH --config "$werank/best.yaml" --out "$R/cora-methods-$method-werank"
  graphssl bench $FRESH --config "$plain/best.yaml" --out "$R/cora-methods-$method-plain"
  alpha=$(key "$werank/best.yaml" alpha); squared=$(key "$werank/best.yaml" squared)
  python benchmarks/paired_difference.py "$R/cora-methods-$method-werank" "$alpha" \
    "$R/cora-methods-$method-plain" 0 --out "$R/cora-methods-$method-paired.json"
  # Cross-checks, chosen by nothing (as cora_fair.sh's for BGRL): each arm's setup with the other arm's WERank
  # setting (alpha and squared, the keys configs/spaces/werank.yaml searches) on the same seeds, so WERank's share
  # of the difference shows apart from the two setups'.
  graphssl bench $FRESH --config "$werank/best.yaml" --werank 0 --out "$R/cora-methods-$method-werank-setup-alpha0"
  graphssl bench $FRESH --config "$plain/best.yaml" --set werank.squared="$squared" --werank "$alpha" \
    --out "$R/cora-methods-$method-plain-setup-werank"
  python benchmarks/paired_difference.py "$R/cora-methods-$method-werank" "$alpha" \
    "$R/cora-methods-$method-werank-setup-alpha0" 0 --out "$R/cora-methods-$method-paired-werank-setup.json"
  python benchmarks/paired_difference.py "$R/cora-methods-$method-plain-setup-werank" "$alpha" \
    "$R/cora-methods-$method-plain" 0 --out "$R/cora-methods-$method-paired-plain-setup.json"
done
# One table of every method's two arms (test accuracy, RankMe, rank, paired difference, the published figures and
# the issue's targets) and its figure, for the README: cora-methods.md and cora-methods.png.
python benchmarks/methods_table.py "$R"  # every method's row, finished or not
