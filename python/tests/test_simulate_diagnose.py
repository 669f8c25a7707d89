"""poolrank.simulate and poolrank.diagnose on arrays: the command line's results."""

import csv
import json

import numpy as np
import pytest

import poolrank


@pytest.fixture(scope="module")
def smooth(tmp_path_factory):
    """A smooth function of 2-D features: active learning should win clearly."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-3, 3, size=(1500, 2)).astype(np.float32)
    y = np.exp(-((x[:, 0] - 1.5) ** 2 + (x[:, 1] + 1) ** 2)) * 3 + 0.05 * rng.normal(size=1500)
    d = tmp_path_factory.mktemp("smooth")
    np.save(d / "pool.npy", x)
    with open(d / "labels.csv", "w") as f:
        f.write("id,score\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(y)))
    return d, x, y


def test_simulate_equals_the_cli(smooth, poolrank_cli, tmp_path):
    d, x, y = smooth
    poolrank_cli("simulate", "--pool", d / "pool.npy", "--labels", d / "labels.csv",
                 "--strategies", "greedy,ucb", "--reps", 3, "--rounds", 3, "--init", 20,
                 "--batch", 20, "--topk", 15, "--seed", 9, "--backend", "cpu",
                 "--quiet", "--out", tmp_path / "cli")
    res = poolrank.simulate(x, y, strategies=["greedy", "ucb"], reps=3, rounds=3, init=20,
                            batch=20, topk=15, seed=9, backend="cpu", out=tmp_path / "py")
    assert res.strategies[0] == "random" and len(res.strategies) == 3
    words = {v["strategy"]: v["final_round"]["verdict"] for v in res.verdicts}
    assert all(w in ("beats-random", "random-like", "worse-than-random") for w in words.values())
    with open(tmp_path / "cli" / "curves.csv") as f:
        cli_rows = list(csv.DictReader(f))
    with open(tmp_path / "py" / "curves.csv") as f:
        py_rows = list(csv.DictReader(f))
    assert cli_rows == py_rows
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert cli["verdicts"] == res.summary["verdicts"]
    assert cli["initial_sets"] == res.summary["initial_sets"]
    labeled, values = res.curve("random")
    assert labeled.tolist() == [20, 40, 60, 80] and values.shape == (3, 4)
    assert (tmp_path / "py" / "recall.svg").exists()
    assert "random" in str(res)
    assert res.summary["stages"] == cli["stages"] and cli["stages"]["pruned"]
    brute = poolrank.simulate(x, y, strategies=["greedy", "ucb"], reps=3, rounds=3, init=20,
                              batch=20, topk=15, seed=9, backend="cpu", prune=False)
    assert brute.summary["stages"]["pruned"] is False
    assert brute.summary["verdicts"] == res.summary["verdicts"]
    assert np.array_equal(brute.curve("ucb(2)")[1], res.curve("ucb(2)")[1])


def test_simulate_finds_that_active_learning_wins_on_a_smooth_function(smooth):
    _, x, y = smooth
    res = poolrank.simulate(x, y, strategies=["greedy"], reps=4, rounds=4, init=20, batch=20,
                            topk=15, backend="cpu")
    (v,) = res.verdicts
    assert v["final_round"]["verdict"] == "beats-random", v


def test_diagnose_equals_the_cli(smooth, poolrank_cli, tmp_path):
    d, x, y = smooth
    labeled = np.arange(0, 1500, 15)
    with open(tmp_path / "labels.csv", "w") as f:
        f.write("id,score\n" + "".join(f"{i},{float(y[i])!r}\n" for i in labeled))
    poolrank_cli("diagnose", "--pool", d / "pool.npy", "--labels", tmp_path / "labels.csv",
                 "--backend", "cpu", "--quiet", "--out", tmp_path / "cli")
    dg = poolrank.diagnose(x, labeled, y[labeled], backend="cpu", out=tmp_path / "py")
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert dg.verdict == cli["verdict"]["verdict"]
    assert dg.report["model"]["cv"] == cli["model"]["cv"]
    assert dg.report["batch"] == cli["batch"]
    assert (tmp_path / "py" / "report.html").read_text().count("<svg") >= 5
    assert dg.verdict in str(dg)


def test_bad_simulate_and_diagnose_input(smooth):
    _, x, y = smooth
    with pytest.raises(ValueError, match='unknown strategy "best"'):
        poolrank.simulate(x, y, strategies=["best"])
    with pytest.raises(ValueError, match="y has 10 values"):
        poolrank.simulate(x, y[:10])
    with pytest.raises(ValueError, match="5-fold cross-validation needs at least 5"):
        poolrank.diagnose(x, [1, 2, 3], y[:3], backend="cpu")
    with pytest.raises(ValueError, match="objective"):
        poolrank.diagnose(x, np.arange(20), y[:20], objective="fast")


def test_out_is_all_or_nothing_and_refuses_what_is_not_a_file(smooth, tmp_path):
    d, x, y = smooth
    out = tmp_path / "run"
    out.mkdir()
    (out / "curves.csv").write_text("previous run\n")
    # summary.json is a folder: refused before any work, the previous curves kept.
    (out / "summary.json").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        poolrank.simulate(x, y, reps=1, rounds=1, init=20, batch=20, backend="cpu", out=out)
    assert (out / "curves.csv").read_text() == "previous run\n"
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv", "summary.json"]


@pytest.fixture(scope="module")
def pareto(tmp_path_factory, poolrank_cli):
    """`synth --scenario pareto`: 300 candidates with two conflicting objectives, all labeled."""
    d = tmp_path_factory.mktemp("pareto-sim")
    poolrank_cli("synth", "--scenario", "pareto", "--n", 300, "--dim", 2, "--seed", 6,
                 "--out", d / "p")
    with open(d / "p.labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == list(range(300))
    y = {c: np.array([float(r[c]) for r in rows]) for c in ("f1", "f2", "f3")}
    return d, np.load(d / "p.npy"), y


def test_simulate_objectives_equals_the_cli(pareto, poolrank_cli, tmp_path):
    d, X, y = pareto
    sizes = dict(reps=3, rounds=3, init=20, batch=10, topk=20, seed=2)
    flags = [x for k, v in sizes.items() for x in (f"--{k}", v)]
    poolrank_cli("simulate", "--pool", d / "p.npy", "--labels", d / "p.labels.csv",
                 "--objectives", "f1:max,f2:max", "--strategies", "ehvi,pareto-ucb",
                 *flags, "--backend", "cpu", "--quiet", "--out", tmp_path / "cli")
    res = poolrank.simulate(X, y, objectives=["f1:max", "f2:max"],
                            strategies=["ehvi", "pareto-ucb"], backend="cpu",
                            out=tmp_path / "py", **sizes)
    assert res.objectives == ["f1:max", "f2:max"]
    assert res.strategies == ["random", "ehvi", "pareto-ucb"]
    with open(tmp_path / "cli" / "curves.csv") as f:
        cli_rows = list(csv.DictReader(f))
    with open(tmp_path / "py" / "curves.csv") as f:
        py_rows = list(csv.DictReader(f))
    assert cli_rows == py_rows
    assert {r["metric"] for r in py_rows} == {"hypervolume", "front_recall"}
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert cli["verdicts"] == res.summary["verdicts"]
    assert [v["metric"] for v in res.verdicts] == ["hypervolume"] * 2 + ["front_recall"] * 2
    assert sorted(p.name for p in (tmp_path / "py").iterdir()) == sorted(
        p.name for p in (tmp_path / "cli").iterdir())
    labeled, values = res.curve("ehvi")
    assert labeled.tolist() == [20, 30, 40, 50] and values.shape == (3, 4)
    assert np.all((values > 0) & (values <= 1))
    _, recall = res.curve("pareto-ucb", "front_recall")
    assert np.all((recall >= 0) & (recall <= 1))
    # Replicate 0's acquired rows: the initial set and every round's batch, no repeats.
    start = set(res.summary["initial_sets"][0])
    for name, rows in res.acquired.items():
        assert len(rows) == len(set(rows.tolist())) == 50, name
        assert start <= set(rows.tolist())
    assert "hypervolume" in str(res) and "ehvi on hypervolume" in repr(res)

    # The labels CSV by path (its ids are pool rows) gives the same run.
    again = poolrank.simulate(X, d / "p.labels.csv", objectives="f1:max,f2:max",
                              strategies=["ehvi", "pareto-ucb"], backend="cpu", **sizes)
    assert again.summary["verdicts"] == res.summary["verdicts"]
    assert np.array_equal(again.curves["value"], res.curves["value"])


def test_simulate_objectives_with_a_constraint_equals_the_cli(pareto, poolrank_cli, tmp_path):
    d, X, y = pareto
    sizes = dict(reps=2, rounds=2, init=20, batch=10, topk=20, seed=3)
    flags = [x for k, v in sizes.items() for x in (f"--{k}", v)]
    poolrank_cli("simulate", "--pool", d / "p.npy", "--labels", d / "p.labels.csv",
                 "--objectives", "f1:max,f2:max", "--strategies", "ehvi,pareto-ucb",
                 "--constraint", "f3>=0.4", *flags, "--backend", "cpu", "--quiet",
                 "--out", tmp_path / "cli")
    res = poolrank.simulate(X, y, objectives=["f1:max", "f2:max"], constraints="f3>=0.4",
                            strategies=["ehvi", "pareto-ucb"], backend="cpu", **sizes)
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert res.summary["constraints"] == ["f3>=0.4"] == cli["constraints"]
    assert res.summary["feasible"] == cli["feasible"] == int((y["f3"] >= 0.4).sum())
    assert res.summary["verdicts"] == cli["verdicts"]
    with pytest.raises(ValueError, match='y has no column "f4"'):
        poolrank.simulate(X, y, objectives=["f1:max", "f2:max"], constraints="f4>=0", **sizes)
    with pytest.raises(ValueError, match="no candidate of the pool meets f3>=100"):
        poolrank.simulate(X, y, objectives=["f1:max", "f2:max"], constraints=["f3>=100"],
                          **sizes)
    with pytest.raises(ValueError, match="constraints: only with objectives"):
        poolrank.simulate(X, y["f1"], constraints="f3>=0.4")


def test_simulate_objectives_refusals(pareto, tmp_path):
    _, X, y = pareto
    kw = dict(objectives=["f1:max", "f2:max"], reps=2, rounds=1, init=20, batch=10,
              backend="cpu")
    with pytest.raises(ValueError, match="strategies: ucb scores one objective; with "
                                         "objectives use ehvi, phvi, pareto-ucb, parego"):
        poolrank.simulate(X, y, strategies=["ucb"], **kw)
    for flag, value in [("minimize", True), ("objective", "accuracy"), ("refit", False),
                        ("xi", 0.1), ("samples", 8), ("test", 0.3)]:
        with pytest.raises(ValueError, match=f"{flag}: a one-objective setting"):
            poolrank.simulate(X, y, **{flag: value}, **kw)
    with pytest.raises(ValueError, match="ref_point: only with objectives"):
        poolrank.simulate(X, y["f1"], ref_point=[0.0, 0.0])
    with pytest.raises(ValueError, match=r'y\["f2"\]\[4\] is NaN: simulate reveals'):
        f2 = y["f2"].copy()
        f2[4] = np.nan
        poolrank.simulate(X, {"f1": y["f1"], "f2": f2}, **kw)
    with pytest.raises(ValueError, match='y has no column "f4"'):
        poolrank.simulate(X, y, **{**kw, "objectives": "f1:max,f4:min"})
    with pytest.raises(ValueError, match="expected a mapping"):
        poolrank.simulate(X, y["f1"], **kw)
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        poolrank.simulate(X, y, out=out, **kw)
    assert [p.name for p in out.iterdir()] == ["summary.json"]
