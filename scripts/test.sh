#!/usr/bin/env bash
# Every test of the repository: the Rust suite (`cargo test`), then the Python package built
# from this checkout into a fresh virtual environment (maturin) and its pytest suite.
#
# POOLRANK_VENV: where the virtual environment goes (default target/py-venv; recreated).
# POOLRANK_SKIP_PYTHON=1: the Rust suite only.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test

if [[ "${POOLRANK_SKIP_PYTHON:-0}" == 1 ]]; then
    exit 0
fi
venv="${POOLRANK_VENV:-target/py-venv}"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "maturin>=1.9,<2" numpy scipy pytest rdkit "ray==2.60.0"
VIRTUAL_ENV="$(cd "$venv" && pwd)" PATH="$(cd "$venv" && pwd)/bin:$PATH" \
    maturin develop --quiet
"$venv/bin/python" -m pytest -q python/tests
