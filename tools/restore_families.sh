#!/usr/bin/env bash
# Fresh Results of some of the cpu suite's task families (TASKS, comma-separated) for the 14 configurations
# stored in baselines/measured/cpu, two processes at a time, 1 torch thread each. They go into the stored
# files with `widthwise baseline update --tasks $TASKS` (nothing else re-measured). Issue 25 ran it twice:
# TASKS=gsm8k,gsm8k_gold (the new GSM8K families), then TASKS=ifeval,gsm8k (generation evidence: the
# token ids and per-step margins the regression gate's near-tie excuse reads).
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${TASKS:?name the families, e.g. TASKS=ifeval,gsm8k}
OUT=${OUT:-runs/restore}
mkdir -p "$OUT"
export WIDTHWISE_DATA_DIR=${WIDTHWISE_DATA_DIR:-../shared/data}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PY:-.nox/tests/bin/python}  # a venv with widthwise installed, e.g. nox -s tests made
configs=(
  "base|"
  "ppm-pct2|--method ppm --pct 2" "ppm-pct5|--method ppm --pct 5" "ppm-pct10|--method ppm --pct 10"
  "ppm-pct15|--method ppm --pct 15" "ppm-pct20|--method ppm --pct 20" "ppm-pct30|--method ppm --pct 30"
  "ppm-pct40|--method ppm --pct 40" "ppm-pct50|--method ppm --pct 50" "ppm-pct60|--method ppm --pct 60"
  "random-pct20|--method random --seed 0 --pct 20" "random-pct40|--method random --seed 0 --pct 40"
  "ppm-reverse-pct20|--method ppm-reverse --pct 20" "ppm-reverse-pct40|--method ppm-reverse --pct 40"
)
one() {
  local name=${1%%|*} flags=${1#*|}
  # shellcheck disable=SC2086
  $PY -m widthwise eval smollm2-135m-instruct --suite cpu --tasks "$TASKS" $flags \
    --threads 1 --no-cache --force --out "$OUT/$name.json" >"$OUT/$name.log" 2>&1 \
    && echo "$name done $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
}
export -f one
export PY OUT TASKS
echo "start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s)
printf '%s\n' "${configs[@]}" | xargs -P 2 -I{} bash -c 'one "$@"' _ {}
echo "end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) wall $(( $(date +%s) - t0 )) s"
