#!/usr/bin/env bash
# Batch-policy benchmark: `poolrank simulate` on Enamine 10k (and on Enamine 50k when it has been
# prepared), the protocol of ../shared/data/README.md: exact GP, MinMax kernel on Morgan radius-2
# 2048 counts, noise variance fixed at 0.03 and signal variance 1 (standardised units), initial
# random 1%, 5 rounds of 1%, minimising the docking score; top-100 recall on 10k (5 replicates),
# top-500 on 50k (3 replicates). Prints one markdown table: per row, the share of the true top-k
# acquired ("candidates", `topk_recall`) and MolPAL's tie-aware score recall ("scores",
# `topk_score_recall`) after the last round, mean (sd over replicates), and the time per round.
#
# usage:
#   scripts/policy_bench.sh [OUT_DIR]                 # default OUT_DIR: target/policy_bench
#   scripts/policy_bench.sh prepare-50k SRC.csv.gz DIR
#       builds the 50k pool from MolPAL's data/Enamine50k_scores.csv.gz (github.com/coleygroup/
#       molpal, columns smiles,score): ids mol0 … in file order, as the 10k set has them;
#       DIR/enamine50k_morgan2_2048.counts.npz (+ .counts.ids.txt) by `poolrank featurize`, and
#       DIR/enamine50k_morgan2_2048.labels.csv (id,score). Run with E50K_DIR=DIR afterwards.
#
# environment (defaults in brackets):
#   POOLRANK    the binary [<repo>/target/release/poolrank]
#   PYTHON      for the aggregation, standard library only [python3]
#   DATA_DIR    Enamine 10k files [<repo>/../shared/data]
#   E50K_DIR    Enamine 50k files [DATA_DIR]; when set explicitly the files must be there;
#               E50K=0 skips the 50k pool
#   ROWS_10K, ROWS_50K, BATCH_MODE   the rows (below)
#   BACKEND [cpu]  THREADS [all cores]  SEED [0]  EXTRA_FLAGS [none]: added to every simulate run
#
# Each row runs in its own folder OUT_DIR/<pool>/<row>/ (curves.csv, summary.json, the plots,
# log.txt, time.txt). `random` always runs inside every simulate call; it also runs alone
# (OUT_DIR/<pool>/random/), which gives the random row and the baseline cost: a row's
# "s/round" is (its simulate seconds − the random-only run's seconds) / (replicates × rounds),
# i.e. its own fit + score + pick per round, random's replay subtracted. The random-only row's
# s/round is its seconds / (replicates × rounds). "CPU s/round" is the same with the process's
# user + system CPU seconds (from /usr/bin/time -v, when there is one): steadier than wall time on
# a shared machine. "total s" is the wall time of the row's process. OUT_DIR/table.md keeps the
# table; OUT_DIR/manifest.tsv lists the runs. A row that fails (e.g. a flag this binary does not
# know) is marked FAILED with its log, the other rows still run, and the script exits non-zero.
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Rows: "STRATEGY [simulate flags]" separated by ';'. A new policy is one more entry, e.g.
#   "thompson-marginal"  "qpo"  "thompson --batch-mode softmax --temperature 0.1"
#   "ucb --batch-mode power --power 2"  "ucb --batch-mode softrank --temperature 0.5"
# Rows without their own --batch-mode get --batch-mode "$BATCH_MODE".
ROWS_10K=${ROWS_10K:-"greedy; ucb; ucb --batch-mode diverse; thompson; qpo; thompson-marginal"}
ROWS_50K=${ROWS_50K:-"greedy; ucb"}
BATCH_MODE=${BATCH_MODE:-topk}
# ---------------------------------------------------------------------------------------------

# Protocol (shared data README): model and schedule, the same for every row.
MODEL_FLAGS=(--kernel minmax --exact --noise 0.03 --signal-var 1)
SCHEDULE_FLAGS=(--init 0.01 --batch 0.01 --rounds 5)
ROUNDS=5
REPS_10K=5 TOPK_10K=100
REPS_50K=3 TOPK_50K=500

die() { echo "policy_bench: error: $*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "no $PYTHON (set PYTHON)"

POOLRANK=${POOLRANK:-$ROOT/target/release/poolrank}
if [[ $POOLRANK == */* ]]; then
    [[ -x $POOLRANK ]] || die "binary '$POOLRANK' not found or not executable (set POOLRANK, or cargo build --release)"
    POOLRANK="$(cd "$(dirname "$POOLRANK")" && pwd)/$(basename "$POOLRANK")"
else
    found=$(command -v "$POOLRANK") || die "binary '$POOLRANK' not on PATH (set POOLRANK)"
    POOLRANK=$found
fi

# ---------------------------------------------------------------------------------------------
# prepare-50k SRC.csv.gz DIR
if [[ ${1:-} == prepare-50k ]]; then
    [[ $# -eq 3 ]] || die "usage: $0 prepare-50k SRC.csv.gz DIR"
    src=$2 dir=$3
    [[ -f $src ]] || die "no file $src (MolPAL's data/Enamine50k_scores.csv.gz)"
    if ! gzip -t "$src" 2>/dev/null; then
        [[ $(head -c 200 "$src" | tr -d '\0') == *git-lfs* ]] && die "$src is a Git LFS pointer, not the data"
        die "$src is not a gzip file"
    fi
    mkdir -p "$dir"
    # ids mol<row> (0-based row of the source file), rows with an unparseable score dropped
    "$PYTHON" - "$src" "$dir/enamine50k.smiles.csv" <<'PY'
import csv, gzip, math, sys
src, out = sys.argv[1:3]
kept = dropped = 0
with gzip.open(src, "rt", newline="") as f, open(out, "w", newline="") as g:
    r = csv.DictReader(f)
    if not r.fieldnames or "smiles" not in r.fieldnames or "score" not in r.fieldnames:
        sys.exit(f"policy_bench: error: {src}: expected columns smiles,score, got {r.fieldnames}")
    w = csv.writer(g); w.writerow(["id", "smiles", "score"])
    for i, row in enumerate(r):
        try:
            ok = math.isfinite(float(row["score"])) and row["smiles"].strip() != ""
        except (TypeError, ValueError):
            ok = False
        if not ok:
            dropped += 1
            print(f"dropped row {i}: {row}", file=sys.stderr); continue
        w.writerow([f"mol{i}", row["smiles"].strip(), row["score"]]); kept += 1
print(f"{kept} rows with a SMILES and a numeric score, {dropped} dropped", file=sys.stderr)
PY
    pool="$dir/enamine50k_morgan2_2048.counts.npz"
    "$POOLRANK" featurize --smiles "$dir/enamine50k.smiles.csv" --radius 2 --bits 2048 --counts \
        --skip-invalid "$dir/invalid.tsv" --quiet --out "$pool"
    # labels for the molecules featurize kept, in pool order
    "$PYTHON" - "$dir/enamine50k.smiles.csv" "${pool%.npz}.ids.txt" \
        "$dir/enamine50k_morgan2_2048.labels.csv" <<'PY'
import csv, sys
smi, ids, out = sys.argv[1:4]
score = {r["id"]: r["score"] for r in csv.DictReader(open(smi, newline=""))}
ids = [l.strip() for l in open(ids) if l.strip()]
with open(out, "w", newline="") as f:
    w = csv.writer(f); w.writerow(["id", "score"])
    for i in ids: w.writerow([i, score[i]])
print(f"{len(ids)} molecules in the pool, {len(score) - len(ids)} refused by featurize", file=sys.stderr)
PY
    echo "wrote $pool, ${pool%.npz}.ids.txt, $dir/enamine50k_morgan2_2048.labels.csv" >&2
    exit 0
fi

# ---------------------------------------------------------------------------------------------
OUT=${1:-$ROOT/target/policy_bench}
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

DATA_DIR=${DATA_DIR:-$ROOT/../shared/data}
[[ -d $DATA_DIR ]] && DATA_DIR="$(cd "$DATA_DIR" && pwd)"
E10K_POOL=$DATA_DIR/enamine10k_morgan2_2048.counts.npz
E10K_SCORES=$DATA_DIR/enamine10k_morgan2_2048.scores.csv
for f in "$E10K_POOL" "$E10K_SCORES"; do
    [[ -f $f ]] || die "Enamine 10k file missing: $f (set DATA_DIR to the folder holding enamine10k_morgan2_2048.*)"
done

want50k=auto
[[ -n ${E50K_DIR:-} ]] && want50k=yes
[[ ${E50K:-} == 0 ]] && want50k=no
E50K_DIR=${E50K_DIR:-$DATA_DIR}
[[ -d $E50K_DIR ]] && E50K_DIR="$(cd "$E50K_DIR" && pwd)"
E50K_POOL=$E50K_DIR/enamine50k_morgan2_2048.counts.npz
E50K_IDS=$E50K_DIR/enamine50k_morgan2_2048.counts.ids.txt
E50K_LABELS=$E50K_DIR/enamine50k_morgan2_2048.labels.csv
have50k=no
if [[ $want50k != no ]]; then
    if [[ -f $E50K_POOL && -f $E50K_IDS && -f $E50K_LABELS ]]; then
        have50k=yes
    elif [[ $want50k == yes ]]; then
        die "Enamine 50k files missing in E50K_DIR=$E50K_DIR (need enamine50k_morgan2_2048.counts.npz, .counts.ids.txt, .labels.csv; build them with: $0 prepare-50k Enamine50k_scores.csv.gz DIR)"
    else
        echo "policy_bench: no Enamine 50k pool in $E50K_DIR: 50k rows skipped (set E50K_DIR)" >&2
    fi
fi

# The 10k counts .npz has no ids: its rows are the scores CSV's rows (ids mol0 …), in order.
mkdir -p "$OUT/e10k"
E10K_IDS=$OUT/e10k/ids.txt
"$PYTHON" - "$E10K_SCORES" "$E10K_IDS" <<'PY'
import csv, sys
with open(sys.argv[1], newline="") as f, open(sys.argv[2], "w") as g:
    for r in csv.DictReader(f): g.write(r["id"] + "\n")
PY

COMMON=(--minimize "${MODEL_FLAGS[@]}" "${SCHEDULE_FLAGS[@]}" --seed "${SEED:-0}"
        --backend "${BACKEND:-cpu}" --quiet)
[[ -n ${THREADS:-} ]] && COMMON+=(--threads "$THREADS")
read -r -a EXTRA <<<"${EXTRA_FLAGS:-}"

MANIFEST=$OUT/manifest.tsv
: >"$MANIFEST"
failed=0

# run_row POOLNAME REPS TOPK ROW POOL_FLAGS...
run_row() {
    local pool=$1 reps=$2 topk=$3 row=$4; shift 4
    local -a words flags
    read -r -a words <<<"$row"
    local strategy=${words[0]}
    flags=("${words[@]:1}")
    if [[ $strategy != random && " ${flags[*]} " != *" --batch-mode "* ]]; then
        flags+=(--batch-mode "$BATCH_MODE")
    fi
    local name
    name=$(printf '%s' "$strategy ${flags[*]}" |
        sed -e 's/--batch-mode//' -e 's/--//g' -e 's/[^A-Za-z0-9.=+-]\{1,\}/_/g' -e 's/_$//')
    [[ $strategy == random ]] && name=random
    local dir=$OUT/$pool/$name
    rm -rf "$dir"; mkdir -p "$dir"
    local -a cmd=("$POOLRANK" simulate "$@" --reps "$reps" --topk "$topk" "${COMMON[@]}"
                  --strategies "$strategy" ${flags[@]+"${flags[@]}"} ${EXTRA[@]+"${EXTRA[@]}"}
                  --out "$dir")
    printf '%q ' "${cmd[@]}" >"$dir/command.txt"; echo >>"$dir/command.txt"
    local -a timer=()
    [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -v -o "$dir/time.txt")
    echo "policy_bench: $pool: $strategy ${flags[*]} -> $dir" >&2
    local t0 t1 status=ok
    t0=$(date +%s%N)
    if ! ${timer[@]+"${timer[@]}"} "${cmd[@]}" >"$dir/log.txt" 2>&1; then
        status=failed; failed=1
        echo "policy_bench: $pool: row '$row' FAILED; last lines of $dir/log.txt:" >&2
        tail -n 5 "$dir/log.txt" >&2
    fi
    t1=$(date +%s%N)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pool" "$strategy ${flags[*]}" "$dir" "$reps" \
        "$ROUNDS" "$topk" "$status" "$(( (t1 - t0) / 1000000 ))" >>"$MANIFEST"
}

# run_pool POOLNAME REPS TOPK "ROWS" POOL_FLAGS...
run_pool() {
    local pool=$1 reps=$2 topk=$3 rows=$4; shift 4
    local -a list
    IFS=';' read -r -a list <<<"$rows"
    run_row "$pool" "$reps" "$topk" random "$@"
    local r
    for r in "${list[@]}"; do
        r=$(echo "$r" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
        [[ -z $r || $r == random ]] && continue
        run_row "$pool" "$reps" "$topk" "$r" "$@"
    done
}

start=$(date -u +%FT%TZ)
load0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
run_pool e10k "$REPS_10K" "$TOPK_10K" "$ROWS_10K" \
    --pool "$E10K_POOL" --ids "$E10K_IDS" --labels "$E10K_SCORES"
if [[ $have50k == yes ]]; then
    run_pool e50k "$REPS_50K" "$TOPK_50K" "$ROWS_50K" \
        --pool "$E50K_POOL" --ids "$E50K_IDS" --labels "$E50K_LABELS"
fi
load1=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

{
    echo "poolrank: $POOLRANK ($("$POOLRANK" --version 2>/dev/null || echo '?'))"
    echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1), $(nproc) cores; backend ${BACKEND:-cpu}"
    echo "started $start, load average $load0 at the start, $load1 at the end"
    echo "protocol: ${MODEL_FLAGS[*]} ${SCHEDULE_FLAGS[*]} --minimize; 10k top-$TOPK_10K x $REPS_10K reps, 50k top-$TOPK_50K x $REPS_50K reps; ${EXTRA_FLAGS:+extra: $EXTRA_FLAGS}"
    echo
} >"$OUT/table.md"

"$PYTHON" - "$MANIFEST" >>"$OUT/table.md" <<'PY'
import csv, json, math, os, re, sys

def time_v(path):
    """(peak RSS in MB, user + system CPU seconds) from `/usr/bin/time -v`, if it ran."""
    try:
        t = open(path).read()
    except OSError:
        return None, None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
    u = re.search(r"User time \(seconds\): ([\d.]+)", t)
    y = re.search(r"System time \(seconds\): ([\d.]+)", t)
    return (int(m.group(1)) / 1024 if m else None,
            float(u.group(1)) + float(y.group(1)) if u and y else None)

def mean_sd(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, sd

def final(curves):
    """{strategy: {metric: [value per replicate]}} at each strategy's last round, and the random rows."""
    rows = list(csv.DictReader(open(curves, newline="")))
    last = {}
    for r in rows:
        last[r["strategy"]] = max(last.get(r["strategy"], 0), int(r["round"]))
    out = {}
    for r in rows:
        if int(r["round"]) == last[r["strategy"]]:
            out.setdefault(r["strategy"], {}).setdefault(r["metric"], {})[int(r["replicate"])] = float(r["value"])
    random_rows = sorted(tuple(r.values()) for r in rows if r["strategy"] == "random")
    return {s: {k: [v[i] for i in sorted(v)] for k, v in m.items()} for s, m in out.items()}, random_rows

runs = list(csv.reader(open(sys.argv[1], newline=""), delimiter="\t"))
base = {}   # pool -> (seconds, cpu seconds, random curve rows) of the random-only run
table, notes = [], []
for pool, row, d, reps, rounds, topk, status, wall in runs:
    reps, rounds = int(reps), int(rounds)
    label = row.strip()
    folder = os.path.relpath(d, os.path.dirname(os.path.abspath(sys.argv[1])))
    if status != "ok":
        table.append([pool, label, "FAILED", "", "", "", "", "", "", folder + "/log.txt"]); continue
    summ = json.load(open(os.path.join(d, "summary.json")))
    secs = float(summ["seconds"])
    fin, rnd = final(os.path.join(d, "curves.csv"))
    rss, cpu = time_v(os.path.join(d, "time.txt"))
    if label == "random":
        base[pool] = (secs, cpu, rnd)
        names = ["random"]
    else:
        names = [s for s in fin if s != "random"]
        if pool in base and rnd != base[pool][2]:
            notes.append(f"{pool} {label}: its random replay differs from the random-only run (not paired?)")
    for s in names:
        m = fin[s]
        c, cs = mean_sd(m["topk_recall"]); sc, scs = mean_sd(m["topk_score_recall"])
        n = reps * rounds
        per = cpu_per = float("nan")
        if s == "random":
            per = secs / n
            cpu_per = cpu / n if cpu is not None else cpu_per
        elif pool in base:
            per = (secs - base[pool][0]) / n
            if cpu is not None and base[pool][1] is not None:
                cpu_per = (cpu - base[pool][1]) / n
        name = label if len(names) == 1 else f"{label} [{s}]"
        table.append([pool, name, f"{100*c:.1f} ({100*cs:.1f})", f"{100*sc:.1f} ({100*scs:.1f})",
                      str(len(m["topk_recall"])), f"{per:.3f}", f"{cpu_per:.3f}",
                      f"{int(wall) / 1000:.1f}",
                      f"{rss:.0f}" if rss is not None else "", folder])
head = ["pool", "row", "candidates % (sd)", "scores % (sd)", "reps", "s/round", "CPU s/round", "total s",
        "peak RSS MB", "folder"]
print("| " + " | ".join(head) + " |")
print("|" + "|".join("---" for _ in head) + "|")
for r in table:
    print("| " + " | ".join(r) + " |")
print()
print("candidates = share of the true top-k acquired (topk_recall), scores = MolPAL's tie-aware score")
print("recall (topk_score_recall), after the last round; mean (sample sd) over replicates.")
print("s/round = (row's simulate seconds - random-only run's seconds) / (reps x rounds); random: its")
print("own seconds / (reps x rounds); total s = the row's process, wall clock. CPU s/round: the same")
print("with user + system CPU seconds (all threads; from /usr/bin/time -v), steadier than wall time on")
print("a shared machine. Times depend on what else runs on the machine.")
for n in notes:
    print("note: " + n)
PY

cat "$OUT/table.md"
[[ $failed == 0 ]] || die "some rows failed (marked FAILED above)"
