#!/usr/bin/env bash
# Paired whole-run timing of --stack on vs --stack off: the demo's MNIST-1D setting (3 seeds, reinit control,
# 3 levels, Adam lr 2e-3, batch 100) at 600 steps per training, interleaved, two pairs. Prints seconds per run.
set -euo pipefail
args=(--model mnist1d_mlp --dataset mnist1d --optimizer adam --lr 2e-3 --batch-size 100 --budget 600it
      --eval-every 250it --rate 0.45 --layer-rate fc3.weight=0.25 --rounds 3 --seeds 0,1,2 --controls reinit --quiet)
out=$(mktemp -d)
for pair in 1 2; do
  for stack in off on; do
    start=$(date +%s.%N)
    python -m lottery_ticket find "${args[@]}" --stack "$stack" --out "$out/$stack-$pair" > "$out/$stack-$pair.log"
    end=$(date +%s.%N)
    echo "pair $pair --stack $stack: $(echo "$end - $start" | bc) s"
  done
done
tail -n 6 "$out/off-1.log" "$out/on-1.log"
