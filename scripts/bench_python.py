#!/usr/bin/env python3
"""What the Python binding costs: GP.predict on a packed pool from Python against the same
call in Rust (examples/predict_npy.rs), on the same file, one after the other, best of REPEATS.

    python scripts/bench_python.py [--rows 1000000] [--train 1000] [--bits 2048] [--repeats 3]

Needs the package installed (scripts/test.sh or `maturin develop --release`) and builds the
Rust example with `cargo build --release --example predict_npy`.
"""

import argparse
import pathlib
import re
import subprocess
import tempfile
import time

import numpy as np

import poolrank

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--bits", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", default="cpu")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    packed = np.packbits(rng.random((a.rows, a.bits), dtype=np.float32) < 0.05, axis=1)
    y = np.sin(np.arange(a.train, dtype=np.float64))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "predict_npy"],
                   cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "pool.npy"
        np.save(path, packed)
        gp = poolrank.GP(kernel="tanimoto", noise=0.1, signal_var=1.0).fit(packed[: a.train], y)
        py_best, rust_best = float("inf"), float("inf")
        for _ in range(a.repeats):
            t = time.perf_counter()
            mean, sd = gp.predict(packed, return_std=True, backend=a.backend)
            py_best = min(py_best, time.perf_counter() - t)
            out = subprocess.run(
                [str(ROOT / "target" / "release" / "examples" / "predict_npy"), str(path),
                 str(a.train), "0.1", a.backend],
                check=True, capture_output=True, text=True).stdout
            rust_best = min(rust_best, float(re.search(r"in ([0-9.]+) s", out).group(1)))
            check = float(re.search(r"checksum (-?[0-9.]+)", out).group(1))
        ours = float(mean.sum() + sd.sum())
        print(f"python GP.predict: {a.rows} rows in {py_best:.3f} s; rust: {rust_best:.3f} s; "
              f"binding cost {100 * (py_best / rust_best - 1):+.1f}% "
              f"(checksums {ours:.6f} / {check:.6f})")


if __name__ == "__main__":
    main()
