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


@pytest.fixture(scope="module")
def pareto(tmp_path_factory, poolrank_cli):
    """`synth --scenario pareto`'s pool, 40 random rows labeled for f1, f2 on half of them (NA
    in the CSV, NaN or None in the mapping) and f3 on all: the labels as a CSV and a dict."""
    d = tmp_path_factory.mktemp("pareto")
    poolrank_cli("synth", "--scenario", "pareto", "--n", 400, "--dim", 3, "--seed", 3,
                 "--out", d / "p")
    with open(d / "p.labels.csv") as f:
        rows = list(csv.DictReader(f))
    labeled = np.random.default_rng(5).choice(400, size=40, replace=False)
    y = {"f1": [], "f2": [], "f3": []}
    with open(d / "labels.csv", "w") as f:
        f.write("id,f1,f2,f3\n")
        for k, i in enumerate(labeled):
            r = rows[i]
            assert int(r["id"]) == i
            f2 = r["f2"] if k % 2 == 0 else "NA"
            f.write(f"{i},{r['f1']},{f2},{r['f3']}\n")
            y["f1"].append(float(r["f1"]))
            y["f2"].append(float(f2) if k % 2 == 0 else (None if k % 4 == 1 else np.nan))
            y["f3"].append(float(r["f3"]))
    return d, np.load(d / "p.npy"), labeled, y


def read_pareto_batch(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    cols = {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k not in ("rank", "id")}
    return cols.pop("index").astype(int), cols.pop("score"), cols


@pytest.mark.parametrize("acq,extra", [
    ("ehvi", {}),
    ("phvi", {"ref_point": [-1.5, -1.25]}),
    ("pareto-ucb", {"beta": 1.5}),
    ("parego", {"round": 2}),
    ("ehvi", {"constraints": ["f1>=0.4", "f3<=0.8"]}),
])
def test_objectives_select_equals_the_cli(pareto, poolrank_cli, acq, extra):
    d, X, labeled, y = pareto
    out = d / f"{acq}-{len(extra)}.csv"
    flags = []
    for key, value in extra.items():
        if key == "constraints":
            for c in value:
                flags += ["--constraint", c]
        else:
            flags += [f"--{key.replace('_', '-')}",
                      ",".join(map(str, value)) if isinstance(value, list) else value]
    poolrank_cli(
        "select", "--pool", d / "p.npy", "--labels", d / "labels.csv", "--objectives",
        "f1:max,f2:max", "--acq", acq, "--batch", 8, "--seed", 4, "--backend", "cpu", "--quiet",
        "--out", out, *flags,
    )
    want_index, want_score, want = read_pareto_batch(out)
    index, score, posterior, summary = poolrank.select(
        X, labeled, y, objectives=["f1:max", "f2:max"], acq=acq, batch=8, seed=4,
        backend="cpu", return_summary=True, **extra,
    )
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_allclose(score, want_score, rtol=1e-9, atol=1e-12)
    assert list(posterior) == list(want), "the command line's columns, in its order"
    for key, values in want.items():
        np.testing.assert_allclose(posterior[key], values, rtol=1e-9, atol=1e-12, err_msg=key)
    assert not set(index) & set(labeled)
    assert summary["acquisition"] == acq and summary["objectives"] == ["f1:max", "f2:max"]
    assert summary["labeled"] == 40 and summary["complete"] == 20
    assert [f["column"] for f in summary["fits"]][:2] == ["f1", "f2"]
    assert ("p_feasible" in posterior) == ("constraints" in extra)
    if "constraints" in extra:
        assert summary["columns"] == ["f1", "f2", "f3"]

    # The labels CSV itself, named by path, gives the same batch.
    again, _, _ = poolrank.select(
        X, None, d / "labels.csv", objectives="f1:max,f2:max", acq=acq, batch=8, seed=4,
        backend="cpu", **extra,
    )
    np.testing.assert_array_equal(again, index)


def test_objectives_select_refusals(pareto):
    _, X, labeled, y = pareto
    kw = dict(objectives=["f1:max", "f2:max"], batch=8, backend="cpu")
    with pytest.raises(ValueError, match="acq: ucb scores one objective; with objectives use "
                                         "ehvi, phvi, pareto-ucb, parego"):
        poolrank.select(X, labeled, y, acq="ucb", **kw)
    with pytest.raises(ValueError, match="acq: ehvi scores several objectives"):
        poolrank.select(X, labeled, y["f1"], acq="ehvi", batch=8)
    with pytest.raises(ValueError, match="constraints: only with objectives"):
        poolrank.select(X, labeled, y["f1"], constraints="f1>=0.5")
    with pytest.raises(ValueError, match="minimize"):
        poolrank.select(X, labeled, y, minimize=True, **kw)
    with pytest.raises(ValueError, match="ref_point"):
        poolrank.select(X, labeled, y, acq="pareto-ucb", ref_point=[0.0, 0.0], **kw)
    with pytest.raises(ValueError, match="ref_point"):
        poolrank.select(X, labeled, y, ref_point=[0.0], **kw)
    with pytest.raises(ValueError, match="NAME>=VALUE"):
        poolrank.select(X, labeled, y, constraints=["f1>0.5"], **kw)
    with pytest.raises(ValueError, match="no candidate is likely to meet f1>=10"):
        poolrank.select(X, labeled, y, constraints="f1>=10", **kw)
    with pytest.raises(ValueError, match="a Pareto round needs 2 or 3"):
        poolrank.select(X, labeled, y, objectives="f1:max", batch=8)
    with pytest.raises(ValueError, match='y has no column "f4"'):
        poolrank.select(X, labeled, y, constraints="f4>=0", **kw)
    with pytest.raises(ValueError, match=r'y\["f2"\] has 39 values'):
        poolrank.select(X, labeled, {**y, "f2": y["f2"][:-1]}, **kw)
    with pytest.raises(ValueError, match=r"expected a mapping"):
        poolrank.select(X, labeled, np.array(y["f1"]), **kw)
    with pytest.raises(ValueError, match="has no value in any column"):
        f1 = [y["f1"][0], np.nan] + y["f1"][2:]
        poolrank.select(X, labeled, {"f1": f1, "f2": y["f2"]}, **kw)
    with pytest.raises(ValueError, match="labeled_index=None"):
        poolrank.select(X, labeled, "labels.csv", **kw)


def test_fit_objectives_predicts_what_select_reports(pareto):
    """One GP per objective, each on its own rows (f2 is missing on half of them): at the
    batch select picks, their means and sds are the batch's columns, a `:min` objective in
    label units."""
    _, X, labeled, y = pareto
    objectives = ["f1:min", "f2:max"]
    index, _, posterior = poolrank.select(X, labeled, y, objectives=objectives, acq="ehvi",
                                          batch=8, backend="cpu")
    models = poolrank.fit_objectives(X[labeled], y, objectives)
    assert list(models) == ["f1", "f2"]
    assert models["f1"].n_train == 40 and models["f2"].n_train == 20
    for column, gp in models.items():
        mean, sd = gp.predict(X[index], return_std=True, backend="cpu")
        np.testing.assert_allclose(mean, posterior[f"mean_{column}"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sd, posterior[f"sd_{column}"], rtol=1e-9, atol=1e-12)
    # The labeled rows' means follow the labels: the sign of a :min fit is undone.
    f1 = np.asarray(y["f1"])
    fitted = models["f1"].predict(X[labeled])
    assert np.corrcoef(fitted, f1)[0, 1] > 0.9

    with pytest.raises(ValueError, match='y has no column "f4"'):
        poolrank.fit_objectives(X[labeled], y, ["f1:max", "f4:max"])
    with pytest.raises(ValueError, match=r'y\["f1"\] has 39 values but X has 40 rows'):
        poolrank.fit_objectives(X[labeled], {**y, "f1": y["f1"][:-1]}, objectives)
    with pytest.raises(ValueError,
                       match='column "f2" has 1 labels in the pool; a model needs at least 2'):
        f2 = [np.nan] * 39 + [0.5]
        poolrank.fit_objectives(X[labeled], {**y, "f2": f2}, objectives)
    with pytest.raises(ValueError, match="a Pareto round needs 2 or 3"):
        poolrank.fit_objectives(X[labeled], y, "f1:max")
