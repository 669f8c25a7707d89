import os
import pathlib
import subprocess

import numpy as np

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def poolrank_cli():
    """The command-line binary of the same checkout (`scripts/test.sh` builds it first)."""
    path = os.environ.get("POOLRANK_BIN")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        path = str(pathlib.Path(target) / "debug" / "poolrank")
    if not pathlib.Path(path).exists():
        pytest.fail(f"no poolrank binary at {path}: run `cargo build` (or set POOLRANK_BIN)")

    def run(*args):
        out = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out

    return run


def write_sharded_pool(d, sizes, seed, relevant, labels, poolrank_cli):
    """A pool of random 256-bit fingerprints in `d`: `pool.npy` whole and `s0.npy`… cut at
    `sizes`, `labels` labeled rows (the count of the first `relevant` bits plus noise) in
    `labels.csv`, and the model fitted to them in `m.model`."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    bits = rng.random((n, 256)) < 0.1
    y = bits[:, :relevant].sum(1) + rng.normal(scale=0.3, size=n)
    labeled = rng.choice(n, size=labels, replace=False)
    packed = np.packbits(bits, axis=1)
    np.save(d / "pool.npy", packed)
    start = 0
    for i, rows in enumerate(sizes):
        np.save(d / f"s{i}.npy", packed[start : start + rows])
        start += rows
    with open(d / "labels.csv", "w") as f:
        f.write("id,score\n")
        for i in labeled:
            f.write(f"{i},{float(y[i])!r}\n")
    poolrank_cli(
        "fit", "--pool", d / "pool.npy", "--labels", d / "labels.csv", "--quiet",
        "--save-model", d / "m.model",
    )
