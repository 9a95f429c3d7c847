#!/usr/bin/env bash
# Trains the package's default small driver from random weights, in the three stages of
# scripts/recipes/closed_loop_finetune.yaml (2-core CPU: about 1 h 50 min). Every output goes under out/; the result
# is out/closed_loop_finetune, to be used with `--model out/closed_loop_finetune` or `model.model_path`.
# A stage whose output is complete is not run again (collect resumes a partial directory itself).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export PATH="${ALPAMAYO_VENV:-$here/.venv}/bin:$PATH"

if [ ! -f out/driver_base/model.safetensors ]; then
  echo "[driver] stage 1 of 3: the first-stage driver (about 45 min)"
  alpamayo-ros train --out out/driver_base --work out/train_base
fi
echo "[driver] stage 2 of 3: closed-loop states of the first-stage driver, labelled by the expert (about 12 min;"
echo "[driver] the bar shows the default scenes, the wide ones are collected beside them)"
alpamayo-ros collect --model out/driver_base --distribution default --seeds 0-3 --out out/closed_loop_default &
default_pid=$!
alpamayo-ros collect --model out/driver_base --distribution wide --seeds 0-3 --out out/closed_loop_wide --quiet &
wide_pid=$!
wait "$default_pid"
wait "$wide_pid"
echo "[driver] stage 3 of 3: fine-tuning with the closed-loop samples (about 45 min)"
alpamayo-ros train --recipe scripts/recipes/closed_loop_finetune.yaml --steps 4500 --max-minutes 40 \
  --out out/closed_loop_finetune --work out/train_closed_loop_finetune
