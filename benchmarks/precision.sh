#!/usr/bin/env bash
# Issue 15 (mixed precision, a faster step): every figure of the README's 'Precision and speed', in the order to
# make them on a quiet machine. Needs the Cora files under $GRAPHSSL_DATA (or ./data). bf16-mixed pays only where
# bfloat16 products are native (AVX-512 CPUs, GPUs); on an AVX2-only CPU the arxiv-size bf16 arm takes hours.
set -euo pipefail
cd "$(dirname "$0")/.."
R=benchmarks/results
ARXIV="--dataset synthetic-arxiv --config configs/ogbn-arxiv.yaml"
# The fp32 step against main before issue 15 (84e5f12), interleaved in one process, both on the Cora config of
# that time (192 -> 128, the default the issue measured; today's default is wider, timed below), then the
# arxiv-size full-batch step (configs/ogbn-arxiv.yaml is the same in both).
git show 84e5f12:configs/cora.yaml > "${TMPDIR:-/tmp}/cora-84e5f12.yaml"
python benchmarks/cora_step.py --config "${TMPDIR:-/tmp}/cora-84e5f12.yaml" --out $R/cora_step.json
python benchmarks/cora_step.py $ARXIV --rounds 4 --block 1 --warmup 1 --check-steps 2 --out $R/arxiv_step.json
# Today's default Cora step beside the PyPI package also named graphssl (0.2.0, its BGRL with a 2 x 256 GCN), each in
# a worker process of its own, alternating blocks (pip download graphssl==0.2.0 --no-deps -d /tmp/peer).
python benchmarks/peer_step.py --peer-wheel /tmp/peer/graphssl-0.2.0-py3-none-any.whl --out $R/peer_step.json
python benchmarks/peer_step.py --peer-wheel /tmp/peer/graphssl-0.2.0-py3-none-any.whl \
  --config "${TMPDIR:-/tmp}/cora-84e5f12.yaml" --out $R/peer_step_192-128.json
# bf16-mixed against 32, interleaved, and each one's peak memory in a process of its own: arxiv size, today's Cora
# default, and the Cora config the issue measured.
python benchmarks/precision_step.py $ARXIV --rounds 4 --block 1 --warmup 1 --out $R/precision/synthetic-arxiv.json
python benchmarks/precision_step.py --dataset cora --out $R/precision/cora.json
python benchmarks/precision_step.py --dataset cora --config "${TMPDIR:-/tmp}/cora-84e5f12.yaml" \
  --out $R/precision/cora-192-128.json
# Where the time goes now, in float32 and bf16-mixed.
P=$R/profile
python benchmarks/profile_step.py --dataset cora --out $P/cora-fp32.txt
python benchmarks/profile_step.py --dataset cora --set train.precision=bf16-mixed --out $P/cora-bf16-mixed.txt
python benchmarks/profile_step.py $ARXIV --warmup 1 --steps 2 --out $P/arxiv-fp32.txt
python benchmarks/profile_step.py $ARXIV --warmup 1 --steps 2 --set train.precision=bf16-mixed --out $P/arxiv-bf16-mixed.txt
# Accuracy parity: Cora's default config (BGRL + its tuned WERank), 10 seeds under each precision, paired by seed.
alpha=$(python -c "import yaml; print(yaml.safe_load(open('configs/cora.yaml'))['werank']['alpha'])")
graphssl bench --datasets cora --seeds 10 --set train.precision=32,bf16-mixed --out $R/precision-parity --quiet
python benchmarks/paired_difference.py $R/precision-parity "$alpha" $R/precision-parity "$alpha" \
  --where-a train.precision=bf16-mixed --where-b train.precision=32 --out $R/precision-parity-paired.json
