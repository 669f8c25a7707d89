#!/usr/bin/env bash
# Featurize throughput on the Enamine 10k SMILES, in one run: `poolrank featurize` (1 and 2
# threads, end to end: read .smi, featurize, write .npz + ids) against RDKit in Python
# (MolFromSmiles + GetMorganGenerator(radius=2, fpSize=2048).GetCountFingerprintAsNumPy, on 1
# process and on 2 worker processes). Prints molecules/s, best of REPS repeats each.
#
#   cargo build --release && bash scripts/bench_featurize.sh
#   PYTHON=/path/to/venv/bin/python REPS=5 bash scripts/bench_featurize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BIN=${POOLRANK:-${CARGO_TARGET_DIR:-target}/release/poolrank}
REPS=${REPS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
zcat data/enamine10k/enamine10k_morgan2_2048.scores.csv.gz | tail -n +2 |
    awk -F, '{print $2" "$1}' >"$tmp/lib.smi"
n=$(wc -l <"$tmp/lib.smi")
echo "molecules: $n; load average: $(cut -d' ' -f1-3 /proc/loadavg); best of $REPS"

best() { sort -g | tail -1; }
for t in 1 2; do
    for _ in $(seq "$REPS"); do
        "$BIN" featurize --smiles "$tmp/lib.smi" --out "$tmp/x.npz" --threads "$t" --quiet 2>&1 |
            sed -n 's/.*(\([0-9.]*\) molecules\/s.*/\1/p'
    done | best | xargs printf "poolrank featurize, %s thread(s): %.0f molecules/s\n" "$t"
done

"$PY" - "$tmp/lib.smi" "$REPS" <<'PYEOF'
import sys, time
from multiprocessing import Pool
from rdkit import Chem, rdBase
from rdkit.Chem import rdFingerprintGenerator

path, reps = sys.argv[1], int(sys.argv[2])

def featurize(smiles):
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    out = []
    for s in smiles:
        out.append(gen.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(s)).nonzero())
    return len(out)

def run(procs):
    t = time.perf_counter()
    smiles = [line.split()[0] for line in open(path)]
    if procs == 1:
        n = featurize(smiles)
    else:
        chunks = [smiles[i:i + 512] for i in range(0, len(smiles), 512)]
        with Pool(procs) as p:
            n = sum(p.map(featurize, chunks))
    return n / (time.perf_counter() - t)

for procs in (1, 2):
    rate = max(run(procs) for _ in range(reps))
    print(f"RDKit {rdBase.rdkitVersion} (Python), {procs} process(es): {rate:.0f} molecules/s")
PYEOF
