#!/usr/bin/env bash
# The GPU benchmarks in one command for the device machine (see bench/README.md, "On a lent GPU").
# It installs the carried wheels (fastai is not there), puts this checkout on PYTHONPATH, and runs
# bench/gpu.py then bench/gpu_cudagraph.py, their JSON and logs going to $OUT.
# BENCHES=peers bash bench/device_run.sh (a second call: the first fills most of a 10-minute call) runs bench/peers.py
# on the GPU instead: clip-nbdev-train against transformers' Trainer, a ViT-B/16-sized random CLIP at 64 px, bf16.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
BENCHES=${BENCHES:-gpu cudagraph}
if [[ " $BENCHES " == *" gpu "* ]]; then timeout ${GPU_BENCH_S:-330} python3 bench/gpu.py 2>&1 | tee $OUT/gpu.log; fi
if [[ " $BENCHES " == *" cudagraph "* ]]; then timeout ${GRAPH_BENCH_S:-200} python3 bench/gpu_cudagraph.py 2>&1 | tee $OUT/gpu_cudagraph.log; fi
if [[ " $BENCHES " == *" peers "* ]]; then
  timeout ${PEERS_BENCH_S:-500} python3 bench/peers.py --device cuda --model vit-b-random --img_size 64 --bs 8 256 --runs 1 --epochs 3 \
    --out $OUT/peers_gpu.json 2>&1 | tee $OUT/peers_gpu.log
fi
