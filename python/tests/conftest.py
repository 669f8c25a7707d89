import os
import pathlib
import subprocess

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
