"""poolrank.select on arrays gives the command line's batch on the same files."""

import csv
import gzip
import pathlib

import numpy as np
import pytest

import poolrank

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "enamine10k"


def read_batch(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return np.array([int(r["index"]) for r in rows]), np.array([float(r["score"]) for r in rows])


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    rng = np.random.default_rng(11)
    bits = rng.random((3000, 512)) < 0.07
    y = bits[:, :30].sum(1) + rng.normal(scale=0.5, size=3000)
    labeled = rng.choice(3000, size=120, replace=False)
    d = tmp_path_factory.mktemp("toy")
    packed = np.packbits(bits, axis=1)
    np.save(d / "pool.npy", packed)
    with open(d / "labels.csv", "w") as f:
        f.write("id,score\n")
        for i in labeled:
            f.write(f"{i},{float(y[i])!r}\n")
    return d, packed, labeled, y[labeled]


@pytest.mark.parametrize("acq", ["ucb", "ei", "thompson", "thompson-marginal", "qpo", "random"])
def test_select_equals_the_cli(toy, poolrank_cli, acq):
    d, packed, labeled, y = toy
    out = d / f"{acq}.csv"
    poolrank_cli(
        "select", "--pool", d / "pool.npy", "--labels", d / "labels.csv", "--batch", 25,
        "--acq", acq, "--seed", 3, "--backend", "cpu", "--out", out,
    )
    want_index, want_score = read_batch(out)
    index, score = poolrank.select(packed, labeled, y, acq=acq, batch=25, seed=3, backend="cpu")
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_allclose(score, want_score, rtol=1e-5, atol=1e-6)
    assert not set(index) & set(labeled)


@pytest.mark.parametrize("acq", ["thompson", "qpo"])
def test_pathwise_select_equals_the_cli(toy, poolrank_cli, acq):
    d, packed, labeled, y = toy
    out = d / f"pathwise-{acq}.csv"
    poolrank_cli(
        "select", "--pool", d / "pool.npy", "--labels", d / "labels.csv", "--batch", 25,
        "--acq", acq, "--seed", 3, "--backend", "cpu", "--exact", "--joint-sampler", "pathwise",
        "--prior-features", 512, "--out", out,
    )
    want_index, want_score = read_batch(out)
    index, score, summary = poolrank.select(
        packed, labeled, y, acq=acq, batch=25, seed=3, backend="cpu", exact=True,
        joint_sampler="pathwise", prior_features=512, return_summary=True,
    )
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_allclose(score, want_score, rtol=1e-5, atol=1e-6)
    assert summary["joint"]["prior_features"] == 512
    with pytest.raises(ValueError, match="joint_sampler"):
        poolrank.select(packed, labeled, y, acq=acq, joint_sampler="exact")


def test_select_options_minimize_diverse_fraction_summary(toy, poolrank_cli):
    d, packed, labeled, y = toy
    out = d / "diverse.csv"
    poolrank_cli(
        "select", "--pool", d / "pool.npy", "--labels", d / "labels.csv", "--batch", "0.01",
        "--minimize", "--batch-mode", "diverse", "--noise", "0.1", "--backend", "cpu", "--out", out,
    )
    want_index, _ = read_batch(out)
    index, _, summary = poolrank.select(
        packed, labeled, y, batch=0.01, minimize=True, batch_mode="diverse", noise=0.1,
        backend="cpu", return_summary=True,
    )
    np.testing.assert_array_equal(index, want_index)
    assert summary["batch"] == 30 and summary["fit"]["noise"] == pytest.approx(0.1)
    assert summary["candidates"] == 3000 - 120


def test_bad_select_input(toy):
    _, packed, labeled, y = toy
    with pytest.raises(ValueError, match="row 3000 is outside the pool's 3000 rows"):
        poolrank.select(packed, np.append(labeled[:-1], 3000), y)
    with pytest.raises(ValueError, match="appears twice"):
        poolrank.select(packed, np.append(labeled[:-1], labeled[0]), y)
    with pytest.raises(ValueError, match="y has 119 values"):
        poolrank.select(packed, labeled, y[:-1])
    with pytest.raises(ValueError, match="acq: expected one of"):
        poolrank.select(packed, labeled, y, acq="best")
    with pytest.raises(ValueError, match="integer row indices"):
        poolrank.select(packed, labeled.astype(float), y)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        poolrank.select(packed, labeled, y, batch=0)


def test_rdkit_fingerprints_select_like_the_shipped_counts(poolrank_cli, tmp_path):
    """RDKit's bit fingerprints, packed with numpy.packbits, give the batch that the command
    line picks from the shipped RDKit counts read as bits (count > 0)."""
    Chem = pytest.importorskip("rdkit.Chem")
    from rdkit.Chem import rdFingerprintGenerator

    with gzip.open(DEMO / "enamine10k_morgan2_2048.scores.csv.gz", "rt") as f:
        rows = list(csv.DictReader(f))[:2000]
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = np.array([gen.GetFingerprintAsNumPy(Chem.MolFromSmiles(r["smiles"])) for r in rows])
    packed = np.packbits(fps.astype(bool), axis=1)
    scores = np.array([float(r["score"]) for r in rows])
    labeled = np.arange(0, 2000, 20)
    index, _ = poolrank.select(packed, labeled, scores[labeled], batch=20, minimize=True,
                               noise=0.1, signal_var=1.0, backend="cpu")

    # The same molecules' shipped counts, as the FPS file the command line reads.
    sparse = pytest.importorskip("scipy.sparse")
    counts = sparse.load_npz(DEMO / "enamine10k_morgan2_2048.counts.npz")[:2000]
    bits = counts.toarray() > 0
    assert np.array_equal(bits, fps.astype(bool)), "RDKit's bits differ from the shipped counts"
    lines = ["#FPS1", "#num_bits=2048"]
    for i, row in enumerate(bits):
        lsb_first = np.packbits(row.reshape(-1, 8)[:, ::-1], axis=1).ravel()
        lines.append(lsb_first.tobytes().hex() + f"\t{i}")
    (tmp_path / "pool.fps").write_text("\n".join(lines) + "\n")
    with open(tmp_path / "labels.csv", "w") as f:
        f.write("id,score\n" + "".join(f"{i},{float(scores[i])!r}\n" for i in labeled))
    poolrank_cli("select", "--pool", tmp_path / "pool.fps", "--labels", tmp_path / "labels.csv",
                 "--batch", 20, "--minimize", "--noise", 0.1, "--signal-var", 1,
                 "--backend", "cpu", "--out", tmp_path / "batch.csv")
    want, _ = read_batch(tmp_path / "batch.csv")
    np.testing.assert_array_equal(index, want)


@pytest.mark.parametrize("mode,acq", [("softmax", "ucb"), ("power", "ei"), ("softrank", "ucb")])
def test_stochastic_modes_are_reproducible_and_match_the_cli(toy, poolrank_cli, mode, acq):
    d, packed, labeled, y = toy
    out = d / f"{mode}.csv"
    poolrank_cli(
        "select", "--pool", d / "pool.npy", "--labels", d / "labels.csv", "--batch", 25,
        "--acq", acq, "--batch-mode", mode, "--temperature", 0.2, "--power", 2, "--seed", 3,
        "--backend", "cpu", "--out", out,
    )
    want_index, _ = read_batch(out)
    kw = dict(acq=acq, batch=25, seed=3, backend="cpu", batch_mode=mode, temperature=0.2, power=2.0)
    index, _ = poolrank.select(packed, labeled, y, **kw)
    np.testing.assert_array_equal(index, want_index)
    again, _ = poolrank.select(packed, labeled, y, **kw)
    np.testing.assert_array_equal(again, index)
    other, _ = poolrank.select(packed, labeled, y, **{**kw, "seed": 4})
    assert list(other) != list(index)
