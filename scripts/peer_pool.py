#!/usr/bin/env python3
"""The NumPy peer's pool as files poolrank reads: the fingerprints and labels that
../shared/tools/peer_throughput.py draws (same generator, same seed), written as a packed .npy
(numpy.packbits rows) and a labels CSV whose ids are row numbers.

usage: peer_pool.py POOL TRAIN BITS OUT_PREFIX   (e.g. 200000 1000 2048 /tmp/p200k)
writes OUT_PREFIX.npy and OUT_PREFIX.labels.csv; then
  poolrank select --pool OUT_PREFIX.npy --labels OUT_PREFIX.labels.csv --batch 0.01 \
      --noise 0.1 --signal-var 1 --backend cpu --out batch.csv
scores the same candidates with the peer's hyperparameters."""
import sys

import numpy as np

pool, train, bits = (int(v) for v in sys.argv[1:4])
out = sys.argv[4]
rng = np.random.default_rng(0)
P = rng.random((pool, bits)) < 50 / 2048
idx = rng.choice(pool, train, replace=False)
y = rng.normal(size=train)
np.save(out + ".npy", np.packbits(P, axis=1))
with open(out + ".labels.csv", "w") as f:
    f.write("id,score\n" + "".join(f"{i},{float(v)!r}\n" for i, v in zip(idx, y)))
