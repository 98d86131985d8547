#!/bin/bash
# Issue 24's GPU window in one call (at most 9 minutes): the stacked-training throughput table, then the paper's
# Figure 5 (Conv-2/4/6 on CIFAR-10 at 20K/25K/30K iterations, conv 10/10/15 %, fc 20 %, output 10 % per level,
# reset to θ₀) to 16 levels (2.8 % of the fully connected weights), ticket + random reinit + random pruning, every
# seed and control of a level stacked. Everything is written as it goes: the table row by row, the run folders
# level by level (crash-safe; `lottery-ticket resume` continues them anywhere), so a window that ends hard keeps
# what finished.
#
#     bash scripts/gpu_stacked.sh CIFAR_DIR OUT_DIR SECONDS [BUDGET]
#
# CIFAR_DIR holds cifar-10-batches-py (carried to the GPU machine first); OUT_DIR gets hardware.txt,
# stacked_DEVICE.md, runs.tar.gz (configs, records, metrics, plots and logs: no weights) and the logs' tails.
# SECONDS bounds the Figure 5 runs; BUDGET (e.g. 2it) shortens every training for a rehearsal.
# Rehearsal on a CPU (tests/test_gpu_script.py): DEVICE=cpu STACK=on ROUNDS=1 MODELS=conv2 BENCH_MODELS=conv2
# BENCH_KS=1,2 BENCH_STEPS=2 EXTRA="--config FILE" (a file setting validation = false for a tiny CIFAR-10).
set -u
CIFAR=$1 OUT=$2 SECONDS_LEFT=$3 BUDGET=${4:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH=$HERE/src PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
PARTS=${PARTS:-bench,extras,figure5}  # a GPU window may split them over calls while CIFAR-10 is carried
DEVICE=${DEVICE:-cuda} STACK=${STACK:-auto} ROUNDS=${ROUNDS:-16} SEEDS=${SEEDS:-0,1} MODELS=${MODELS:-conv2 conv4 conv6}
BENCH_MODELS=${BENCH_MODELS:-conv2,conv4,conv6,cifar_resnet20,cifar_vgg19} BENCH_STEPS=${BENCH_STEPS:-100}
BENCH_SECONDS=${BENCH_SECONDS:-150} BENCH_KS=${BENCH_KS:-1,4,16} EXTRA=${EXTRA:-}
RUNS=${RUNS:-/tmp/gpu_stacked}
mkdir -p "$OUT" "$RUNS"
bash "$HERE/scripts/hardware.sh" "$PY" > "$OUT/hardware.txt"
cd "$HERE"
if [[ $PARTS == *bench* ]]; then
timeout --signal=INT "$BENCH_SECONDS" $PY benchmarks/stacked.py --device "$DEVICE" --models "$BENCH_MODELS" \
    --ks "$BENCH_KS" --steps "$BENCH_STEPS" --repeats 1 --data-dir "$CIFAR" > "$OUT/stacked_$DEVICE.md" 2>&1
fi
if [[ $PARTS == *extras* && $DEVICE == cuda* ]]; then  # nothing else on the GPU: bf16 stacking, the 2:4 product alone
    timeout --signal=INT "${BF16_SECONDS:-45}" $PY benchmarks/stacked.py --device "$DEVICE" --models conv2 --amp bf16 \
        --ks "$BENCH_KS" --steps "$BENCH_STEPS" --repeats 1 --data-dir "$CIFAR" > "$OUT/stacked_${DEVICE}_bf16.md" 2>&1
    timeout --signal=INT "${SPARSE24_SECONDS:-45}" $PY benchmarks/gpu_24_product.py > "$OUT/gpu_24_product.txt" 2>&1
fi
[[ $PARTS == *figure5* ]] || exit 0
find_figure5() {  # MODEL STACK OUT SECONDS: one model's IMP, Figure 5's protocol
    # shellcheck disable=SC2086  # EXTRA is a list of words
    timeout --signal=INT "$4" $PY -m lottery_ticket find --preset "$1-cifar10" --data-dir "$CIFAR" \
        --no-verify-checksums --device "$DEVICE" --seeds "$SEEDS" --controls reinit,random-prune --rounds "$ROUNDS" \
        --stack "$2" --quiet ${BUDGET:+--budget $BUDGET} $EXTRA --out "$3"
}
run_figure5() {  # a stacked run that fails early (not by the timeout) reruns one network at a time
    local model=$1 started=$SECONDS rc
    find_figure5 "$model" "$STACK" "$RUNS/$model-cifar10" "$SECONDS_LEFT" > "$RUNS/$model.log" 2>&1
    rc=$?
    local left=$((SECONDS_LEFT - (SECONDS - started)))
    if [[ $rc -ne 0 && $rc -ne 124 && $STACK != off && $left -gt 30 ]]; then
        echo "stacked run failed (exit $rc); rerunning with --stack off for ${left}s" >> "$RUNS/$model.log"
        find_figure5 "$model" off "$RUNS/$model-cifar10-unstacked" "$left" >> "$RUNS/$model.log" 2>&1
    fi
}
for model in $MODELS; do
    run_figure5 "$model" &
done
wait
for model in $MODELS; do
    $PY -m lottery_ticket report "$RUNS/$model-cifar10" >> "$RUNS/$model.log" 2>&1
done
for dir in "$RUNS"/*-unstacked; do
    [[ -d $dir ]] && $PY -m lottery_ticket report "$dir" >> "$RUNS/$(basename "$dir" -cifar10-unstacked).log" 2>&1
done
(cd "$RUNS" && tar czf "$OUT/runs.tar.gz" --exclude='*.safetensors' --exclude='checkpoints' --exclude='*.lock' .)
tail -n 25 "$RUNS"/*.log > "$OUT/tails.txt"
