#!/usr/bin/env bash
# One process against the sharded paths on one machine, same files, same minute:
#   select --model on the whole pool; 8 `score-shard` tasks one after another, then `merge`;
#   poolrank.distributed.score_pool on a local Ray cluster (Ray's start-up timed apart).
# Every path's batch is checked to be the same file. Needs `poolrank` (release) on PATH and a
# Python with poolrank and ray.
#
# usage: scripts/shard_bench.sh DIR [POOL_SIZE]   (default 1000000 candidates, 1000 labels)
set -euo pipefail
dir=$1
n=${2:-1000000}
py=${PYTHON:-python3}
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir"
cd "$dir"
if [[ ! -f pool.npy ]]; then
    "$py" "$here/peer_pool.py" "$n" 1000 2048 pool
    "$py" - "$n" <<'PY'
import sys, numpy as np
n = int(sys.argv[1]); x = np.load("pool.npy", mmap_mode="r")
edges = np.linspace(0, n, 9).astype(int)
for i in range(8):
    np.save(f"s{i}.npy", x[edges[i]:edges[i + 1]])
PY
    poolrank fit --pool pool.npy --labels pool.labels.csv --noise 0.1 --signal-var 1 \
        --quiet --save-model m.model
    poolrank shard-list --out shards.tsv s?.npy
fi
t() { /usr/bin/time -f "%e s wall, %M KB max RSS" "$@"; }
lscpu | grep 'Model name'
echo "one process: select --model"
t poolrank select --pool pool.npy --model m.model --batch 1000 --acq ucb --quiet --out one.csv
echo "8 score-shard tasks one after another, then merge"
rm -rf parts && mkdir parts
start=$(date +%s.%N)
for i in 0 1 2 3 4 5 6 7; do
    t poolrank score-shard --model m.model --shard-list shards.tsv --index $i --k 1000 \
        --acq ucb --quiet --out "parts/part-$i.part" 2>&1 | tail -1
done
t poolrank merge --parts 'parts/part-*.part' --k 1000 --shard-list shards.tsv --out array.csv
end=$(date +%s.%N)
echo "array path total: $(echo "$end - $start" | bc) s"
cmp one.csv array.csv && echo "array batch == one-process batch"
echo "Ray (local, 2 CPUs): start-up, then score_pool (8 tasks of 1 CPU)"
"$py" - <<'PY'
import time, ray
from poolrank import distributed
t0 = time.perf_counter(); ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
t1 = time.perf_counter()
distributed.score_pool("shards.tsv", "m.model", 1000, acq="ucb", out="ray.csv", progress=False)
t2 = time.perf_counter()
print(f"ray start-up {t1 - t0:.2f} s; score_pool {t2 - t1:.2f} s")
ray.shutdown()
PY
cmp one.csv ray.csv && echo "ray batch == one-process batch"
