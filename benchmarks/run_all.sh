#!/usr/bin/env bash
# Every figure quoted in the README, in the order it was made (timing-sensitive ones first, on a quiet machine).
# Needs the Cora files under $GRAPHSSL_DATA (or ./data). About an hour on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
R=benchmarks/results
python benchmarks/step_time.py --dataset cora --werank 0.1 --rounds 10 --block 20 > $R/cora_step_time.json
python benchmarks/log_cost.py --dataset cora --rounds 8 --steps 100 --out $R/log_cost.json
/usr/bin/time -f "%e" -o $R/cora_train_wall_seconds.txt \
  graphssl train --dataset cora --werank 0.1 --quiet --out $R/cora-default-run
python benchmarks/arxiv_scale.py --out $R/arxiv_scale.json
python benchmarks/distributed_throughput.py --out $R/distributed_throughput.json
graphssl bench --datasets cora --werank 0 0.1 --seeds 10 --out $R/cora-werank --quiet
graphssl bench --datasets cora --werank 0.1 [0.1,0] [0,0.1] --seeds 5 --out $R/ablation-per-layer --quiet
for p in 0.1 0.5; do  # weak and strong augmentation (the default is 0.3 everywhere)
  graphssl bench --datasets cora --werank 0 0.1 --seeds 5 --out $R/ablation-augmentation-$p --quiet \
    --set augment.drop_edge_1=$p --set augment.drop_edge_2=$p --set augment.mask_feature_1=$p --set augment.mask_feature_2=$p
done
graphssl plot $R/cora-werank/runs/cora__werank0__seed0 $R/cora-werank/runs/cora__werank0.1__seed0 --out $R/cora-plots
graphssl plot $R/cora-werank --out $R/cora-plots
for a in 0 0.1; do  # training curves: with vs without WERank over 300 steps
  graphssl train --dataset cora --werank $a --steps 300 --set train.probe_every=25 --set train.spectra_every=25 \
    --out $R/curves/cora-werank$a --quiet
done
graphssl plot $R/curves/cora-werank0 $R/curves/cora-werank0.1 --out $R/curves
graphssl toy --sweep --epochs 1000 --out $R/toy --quiet  # the earlier, too-short length
graphssl toy --sweep --epochs 5000 --out $R/toy-5000 --quiet
graphssl toy --sweep --epochs 10000 --losses vicreg --out $R/toy-vicreg-10000 --quiet
