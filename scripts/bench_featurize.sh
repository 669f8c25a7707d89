#!/usr/bin/env bash
# Featurize throughput on the Enamine 10k SMILES, in one run: `poolrank featurize` (1 and 2
# threads, end to end: read .smi, featurize, write .npz + ids) against RDKit in Python
# (MolFromSmiles + GetMorganGenerator(radius=2, fpSize=2048).GetCountFingerprintAsNumPy, on 1
# process and on 2 worker processes). Prints molecules/s, best of REPS repeats each.
#
#   cargo build --release && bash scripts/bench_featurize.sh
#   PYTHON=/path/to/venv/bin/python REPS=5 bash scripts/bench_featurize.sh
#   BASELINE=/path/to/older/poolrank bash scripts/bench_featurize.sh   # also time an older build
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BIN=${POOLRANK:-${CARGO_TARGET_DIR:-target}/release/poolrank}
REPS=${REPS:-3}
BASELINE=${BASELINE:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
zcat data/enamine10k/enamine10k_morgan2_2048.scores.csv.gz | tail -n +2 |
    awk -F, '{print $2" "$1}' >"$tmp/lib.smi"
n=$(wc -l <"$tmp/lib.smi")
echo "molecules: $n; load average: $(cut -d' ' -f1-3 /proc/loadavg); best of $REPS"

cat >"$tmp/rdkit_rate.py" <<'PYEOF'
import sys, time
from multiprocessing import Pool
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

def featurize(smiles):
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return sum(1 for s in smiles
               if gen.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(s)) is not None)

if __name__ == "__main__":
    path, procs = sys.argv[1], int(sys.argv[2])
    t = time.perf_counter()
    smiles = [line.split()[0] for line in open(path)]
    if procs == 1:
        n = featurize(smiles)
    else:
        chunks = [smiles[i:i + 512] for i in range(0, len(smiles), 512)]
        with Pool(procs) as p:
            n = sum(p.map(featurize, chunks))
    print(f"{n / (time.perf_counter() - t):.0f}")
PYEOF

# Interleaved, so every contender sees the same machine load; the best of REPS is kept.
declare -A best
for _ in $(seq "$REPS"); do
    for t in 1 2; do
        for b in "$BIN" $BASELINE; do
            r=$("$b" featurize --smiles "$tmp/lib.smi" --out "$tmp/x.npz" --threads "$t" --quiet 2>&1 |
                sed -n 's/.*(\([0-9.]*\) molecules\/s.*/\1/p')
            k="poolrank featurize$([ "$b" = "$BIN" ] || echo " (baseline $b)"), $t thread(s)"
            best[$k]=$(printf '%s\n%s\n' "${best[$k]:-0}" "$r" | sort -g | tail -1)
        done
        r=$("$PY" "$tmp/rdkit_rate.py" "$tmp/lib.smi" "$t")
        k="RDKit $("$PY" -c 'from rdkit import rdBase; print(rdBase.rdkitVersion)') (Python), $t process(es)"
        best[$k]=$(printf '%s\n%s\n' "${best[$k]:-0}" "$r" | sort -g | tail -1)
    done
done
for k in "${!best[@]}"; do printf '%s: %.0f molecules/s\n' "$k" "${best[$k]}"; done | sort
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
