#!/usr/bin/env python3
"""The Ray path against one process, interleaved: each round runs `select --model` on the whole
pool once, then `poolrank.distributed.score_pool` once per task shape, in one Ray session
(its start-up timed apart); every batch is checked to be the one-process file. Medians over
the rounds.

usage: ray_overhead.py DIR [ROUNDS]   (default 11)
DIR holds the files `scripts/shard_bench.sh DIR` makes (pool.npy, m.model, shards.tsv of 8
shards); `poolrank` (release) on PATH, and a Python with poolrank and ray.
"""
import filecmp
import os
import statistics
import subprocess
import sys
import time

import ray

from poolrank import distributed

os.chdir(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 11
# (shards per task, CPUs per task) of the 8 shards.
shapes = [(1, 1), (2, 1), (4, 1), (8, 2)]
select = ["poolrank", "select", "--pool", "pool.npy", "--model", "m.model", "--batch", "1000",
          "--acq", "ucb", "--quiet", "--out", "one.csv"]

t0 = time.perf_counter()
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
print(f"ray start-up {time.perf_counter() - t0:.2f} s")
times, task_seconds = {}, {}
for _ in range(rounds):
    t = time.perf_counter()
    subprocess.run(select, check=True, capture_output=True)
    times.setdefault("one process", []).append(time.perf_counter() - t)
    for per_task, cpus in shapes:
        name = f"ray, {8 // per_task} tasks of {per_task} shard(s), {cpus} CPU(s) each"
        t = time.perf_counter()
        _, summary = distributed.score_pool(
            "shards.tsv", "m.model", 1000, acq="ucb", out="ray.csv", progress=False,
            per_task=per_task, cpus_per_task=cpus,
        )
        times.setdefault(name, []).append(time.perf_counter() - t)
        task_seconds.setdefault(name, []).append(summary["task_seconds"])
        assert filecmp.cmp("one.csv", "ray.csv", shallow=False), f"{name}: another batch"
base = statistics.median(times["one process"])
for name, v in times.items():
    med = statistics.median(v)
    extra = ""
    if name in task_seconds:
        extra = f", task seconds median {statistics.median(task_seconds[name]):.2f}"
    print(f"{name}: median {med:.3f} s ({med / base - 1:+.0%}), min {min(v):.3f}, "
          f"max {max(v):.3f} ({len(v)} runs){extra}")
ray.shutdown()
