#!/usr/bin/env bash
# The GPU benchmarks in one command for the device machine (see bench/README.md, "On a lent GPU").
# It installs the carried wheels (fastai is not there), puts this checkout on PYTHONPATH, and runs
# bench/gpu.py then bench/gpu_cudagraph.py, their JSON and logs going to $OUT.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout ${GPU_BENCH_S:-330} python3 bench/gpu.py 2>&1 | tee $OUT/gpu.log
timeout ${GRAPH_BENCH_S:-200} python3 bench/gpu_cudagraph.py 2>&1 | tee $OUT/gpu_cudagraph.log
