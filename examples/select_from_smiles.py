#!/usr/bin/env python3
"""A chemist's round of active learning in Python: SMILES → RDKit Morgan fingerprints →
poolrank.select → the next batch as a CSV (and a pandas DataFrame when pandas is installed).

    python examples/select_from_smiles.py [LIBRARY.csv[.gz]] [--measured N] [--batch 50]
        [--out next_batch.csv]

LIBRARY is a CSV with `id`, `smiles` and `score` columns (default: the built-in Enamine 10k
demo set, docking scores, lower is better). To play one round, the example pretends that a
seeded random `--measured` of them have been measured and the rest not; with your own
library, put your measured values in `score` and leave the others empty.
Needs: numpy, rdkit (pip install rdkit), poolrank.
"""

import argparse
import csv
import gzip
import pathlib

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

import poolrank

DEMO = (pathlib.Path(__file__).resolve().parents[1] / "data" / "enamine10k"
        / "enamine10k_morgan2_2048.scores.csv.gz")


def read_library(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("library", nargs="?", default=DEMO)
    ap.add_argument("--measured", type=int, default=100, help="demo: how many count as measured")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--limit", type=int, default=None, help="use the first N molecules only")
    ap.add_argument("--out", default="next_batch.csv")
    a = ap.parse_args()

    rows = read_library(a.library)[: a.limit]
    # 1. Fingerprints with RDKit: Morgan radius 2, 2048 bits, packed 8 per byte.
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    mols = [Chem.MolFromSmiles(r["smiles"]) for r in rows]
    bad = [r["id"] for r, m in zip(rows, mols) if m is None]
    if bad:
        raise SystemExit(f"RDKit could not parse {len(bad)} SMILES, e.g. {bad[:5]}")
    fps = np.packbits(np.array([gen.GetFingerprintAsNumPy(m) for m in mols], dtype=bool), axis=1)

    # 2. What has been measured so far.
    if a.library == DEMO:
        measured = np.random.default_rng(0).choice(len(rows), size=a.measured, replace=False)
    else:
        measured = np.array([i for i, r in enumerate(rows) if r["score"].strip()])
    y = np.array([float(rows[i]["score"]) for i in measured])

    # 3. The next batch: UCB on a Tanimoto GP, docking scores are better when lower.
    index, score = poolrank.select(fps, measured, y, acq="ucb", batch=a.batch, minimize=True)
    gp = poolrank.GP(kernel="tanimoto").fit(fps[measured], y)
    mean, sd = gp.predict(fps[index], return_std=True)

    # 4. Out as a CSV (and a DataFrame when pandas is there).
    table = [
        {"rank": k + 1, "id": rows[i]["id"], "smiles": rows[i]["smiles"], "acquisition": s,
         "predicted_score": m, "predicted_sd": d}
        for k, (i, s, m, d) in enumerate(zip(index, score, mean, sd))
    ]
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    try:
        import pandas as pd

        print(pd.DataFrame(table).head(10).to_string(index=False))
    except ImportError:
        for r in table[:10]:
            print(r)
    print(f"wrote {len(table)} candidates to {a.out}")


if __name__ == "__main__":
    main()
