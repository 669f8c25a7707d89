"""The README's Python example runs end to end (on 600 molecules of the demo set)."""

import csv
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_select_from_smiles_example(tmp_path):
    pytest.importorskip("rdkit")
    out = tmp_path / "next.csv"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "select_from_smiles.py"), "--limit", "600",
         "--measured", "60", "--batch", "12", "--out", str(out)],
        check=True, capture_output=True, text=True,
    )
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    assert [int(r["rank"]) for r in rows] == list(range(1, 13))
    assert all(r["smiles"] and float(r["predicted_sd"]) >= 0 for r in rows)
