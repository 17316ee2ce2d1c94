#!/bin/bash
# Stacked k=10 vs 10 separate processes, 2x1000 MNIST MLP, batch 128, 1 epoch, 1 thread; BP and MF.
cd /work/main && . .venv/bin/activate
export MFBENCH_DATA=/work/shared/datasets OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
out=/tmp/stackbench; rm -rf $out; mkdir -p $out
common="--dataset mnist --arch mlp --depth 2 --width 1000 --batch-size 128 --epochs 1 --device cpu --val-fraction 0"
for a in bp mf; do
  s=$(date +%s.%N)
  /usr/bin/time -f "%M" -o $out/$a.stacked.rss mfbench train $common --algorithm $a --seeds 0 1 2 3 4 5 6 7 8 9 --seed-stack 10 --out "$out/$a/stacked/seed{seed}.csv" > $out/$a.stacked.log 2>&1
  e=$(date +%s.%N); echo "$a stacked k=10: wall $(echo "$e - $s" | bc) s, peak RSS $(cat $out/$a.stacked.rss) KB"
  s=$(date +%s.%N); max=0
  for seed in 0 1 2 3 4 5 6 7 8 9; do
    /usr/bin/time -f "%M" -o $out/$a.sep$seed.rss mfbench train $common --algorithm $a --seed $seed --out "$out/$a/separate/seed$seed.csv" > $out/$a.sep$seed.log 2>&1
    r=$(cat $out/$a.sep$seed.rss); [ $r -gt $max ] && max=$r
  done
  e=$(date +%s.%N); echo "$a 10 separate processes: wall $(echo "$e - $s" | bc) s, peak RSS per process $max KB"
done
