#!/usr/bin/env bash
# One-command accelerator check of setwise (README "Training on several GPUs").
#
#   tools/gpu_check.sh                 # on a CUDA machine: installs setwise, writes results
#   tools/gpu_check.sh --device cpu --tiny --steps 2   # dry run (the test does this)
#
# Installs the four setwise packages with `pip install --no-deps -e` (torch, JAX with CUDA,
# PyG, optax... must already be there), then runs tools/gpu_check.py: every registered task x
# backend x aggregator/creator for a few hundred steps on the device, the EA benchmark
# against PyG and the molecules EA/Sum step-time ratio (paper 1 E.2: 1.84x at T=5, 2.86x at
# T=10). Results: gpu_check.json and gpu_check.md under $OUT if set, else runs/gpu_check.
# Sized for 8 minutes on one H100: training runs stop being started after --budget seconds
# (default 330) and are listed as skipped. SETWISE_NO_INSTALL=1 skips the install.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${SETWISE_NO_INSTALL:-}" ]]; then
  python -m pip install --quiet --no-deps -e packages/reference -e packages/torch_backend \
    -e packages/jax_backend -e packages/tasks
fi
export SETWISE_DATA="${SETWISE_DATA:-$(pwd)/../shared/data}"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
exec python tools/gpu_check.py "$@"
