#!/usr/bin/env python3
"""Synthetic parts for timing `poolrank merge`: PARTS parts of K rows each, as if a pool of
PARTS x ROWS candidates had been scored in PARTS tasks of one shard list (the shards do not
exist: merge them with --no-shard-check).

usage: merge_bench.py PARTS K ROWS OUT_DIR     (e.g. 10000 1000 100000 /tmp/parts)
then   /usr/bin/time -v poolrank merge --parts 'OUT_DIR/part-*.part' --k K --no-shard-check \
           --out OUT_DIR/batch.csv
"""
import json
import pathlib
import random
import sys
import zlib

parts, k, rows = (int(v) for v in sys.argv[1:4])
out = pathlib.Path(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(0)
for i in range(parts):
    start = i * rows
    meta = {
        "poolrank": "bench",
        "model": {"path": "m.model", "xxh3": "0123456789abcdef", "labeled": 1000},
        "features": {"type": "bits", "nbits": 2048},
        "settings": {
            "acquisition": {"name": "ucb", "beta": 2.0}, "seed": 0, "round": 0, "k": k,
            "mode": "topk", "max_sim": None, "shortlist": None, "pending": None,
        },
        "task": {
            "list": {"path": "shards.tsv", "xxh3": "fedcba9876543210", "shards": parts,
                     "per_task": 1, "tasks": parts},
            "index": i, "start": start, "end": start + rows,
        },
        "shards": [{"path": f"s{i}.fps", "size": 1, "modified_ns": 0,
                    "xxh3": "0000000000000000", "start": start, "rows": rows}],
        "summary": {
            "rows": rows, "labeled": 0, "pending": 0, "candidates": rows, "kept": k,
            "backend": "cpu", "stages": {"pruned": True, "mean": rows, "variance": k, "partial": 0},
            "seconds": {"locate": 0.0, "score": 0.0, "total": 0.0},
        },
    }
    lines = ["#poolrank-part 1", "#meta " + json.dumps(meta, separators=(",", ":")),
             "#score\tindex\tid\tmean\tsd\tzmean\tzvar"]
    picked = sorted(rng.sample(range(rows), k))
    scored = sorted(((rng.random() * 4.0, start + r) for r in picked), key=lambda t: (-t[0], t[1]))
    for s, g in scored:
        lines.append(f"{s:.7g}\t{g}\tZ{g:010d}\t{s - 1.0:.12g}\t{0.5:.12g}\t{s / 2:.7g}\t0.25")
    body = ("\n".join(lines) + "\n").encode()
    (out / f"part-{i}.part").write_bytes(
        body + f"#end\t{k}\t{zlib.crc32(body):08x}\n".encode())
