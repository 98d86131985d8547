#!/bin/bash
# Everything this project measures on a CUDA GPU, in one bounded run (issue 15's "one prepared script").
#
#     bash scripts/gpu_runs.sh CIFAR_DIR OUT_DIR SECONDS [BUDGET]
#
# 1. the GPU tests (2:4 export equals the masked dense model), 2. the 2:4 inference benchmarks,
# 3. Conv-2, Conv-4 and Conv-6 IMP on CIFAR-10 at the paper's per-round iteration counts with the random-reinit
#    control, the three side by side on the one GPU, stopped after SECONDS. Runs are crash-safe, so whatever
#    levels finished are complete and reported; `lottery-ticket resume` continues them on any machine.
# BUDGET (default: the presets' 20K/25K/30K iterations) shortens the rounds for a smoke test on a CPU.
# Needs only torch, numpy, safetensors, matplotlib, tqdm: the library runs from src/ without installing.
set -u
PARTS=${PARTS:-bench,imp}  # which parts to run
CIFAR=$1 OUT=$2 SECONDS_LEFT=$3 BUDGET=${4:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH=$HERE/src PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
RUNS=${RUNS:-/tmp/gpu_runs}
mkdir -p "$OUT" "$RUNS"
bash "$HERE/scripts/hardware.sh" "$PY" > "$OUT/hardware.txt"
cd "$HERE"
if [[ $PARTS == *bench* ]]; then
$PY -m pytest -q -p no:cacheprovider tests/test_export.py -k "24 or gpu" -rA > "$OUT/gpu_tests.txt" 2>&1
$PY benchmarks/gpu_24.py --repeats 3 > "$OUT/gpu_24.txt" 2>&1
$PY benchmarks/inference.py --gpu --repeats 5 > "$OUT/inference_gpu.txt" 2>&1
fi
[[ $PARTS == *imp* ]] || exit 0
device=cuda; $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())" || device=cpu
for model in conv2 conv4 conv6; do
    timeout --signal=INT "$SECONDS_LEFT" $PY -m lottery_ticket find --preset $model-cifar10 --data-dir "$CIFAR" \
        --no-verify-checksums --device $device --seeds 0 --controls reinit --rounds 15 ${BUDGET:+--budget $BUDGET} \
        --out "$RUNS/$model-cifar10-gpu" > "$RUNS/$model.log" 2>&1 &
done
wait
for model in conv2 conv4 conv6; do
    $PY -m lottery_ticket report "$RUNS/$model-cifar10-gpu" >> "$RUNS/$model.log" 2>&1
done
# Summaries only (the weights are megabytes per round): config, records, metrics, plots, logs.
(cd "$RUNS" && tar czf "$OUT/runs.tar.gz" --exclude='*.safetensors' --exclude='checkpoints' --exclude='*.lock' .)
tail -n 25 "$RUNS"/*.log
