"""poolrank.score_shard and poolrank.merge: shards scored from Python merge to the batch the
command line's `select --model` picks on the whole pool, byte for byte."""

import numpy as np
import pytest

import poolrank
from conftest import write_sharded_pool

SIZES = [700, 1, 1299, 1000]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, poolrank_cli):
    d = tmp_path_factory.mktemp("sharded")
    write_sharded_pool(d, SIZES, seed=5, relevant=20, labels=90, poolrank_cli=poolrank_cli)
    poolrank_cli("shard-list", "--out", d / "list.tsv", *[d / f"s{i}.npy" for i in range(4)])
    return d


@pytest.mark.parametrize("acq", ["ucb", "thompson-marginal", "random"])
def test_python_shards_merge_to_the_cli_batch(sharded, poolrank_cli, acq):
    d = sharded
    want = d / f"one-{acq}.csv"
    poolrank_cli(
        "select", "--pool", d / "pool.npy", "--model", d / "m.model", "--batch", 20,
        "--acq", acq, "--seed", 4, "--quiet", "--out", want,
    )
    parts = d / acq
    parts.mkdir()
    for i in range(4):
        meta = poolrank.score_shard(
            d / "m.model", parts / "part-{index}.part", 20, shard_list=d / "list.tsv",
            index=i, acq=acq, seed=4, backend="cpu",
        )
        assert meta["task"]["index"] == i
        assert meta["task"]["end"] - meta["task"]["start"] == SIZES[i]
    out = parts / "batch.csv"
    batch, summary = poolrank.merge([parts / "part-*.part"], 20, out=out)
    assert out.read_text() == want.read_text()
    # In stages: tasks 0 and 2 merged into one part, then with the others.
    group = poolrank.merge_to_part(
        [parts / "part-0.part", parts / "part-2.part"], 20, parts / "group.gpart",
        shard_list=d / "list.tsv", model=d / "m.model",
    )
    assert [p["index"] for p in group["task"]["pieces"]] == [0, 2]
    assert group["summary"]["rows"] == SIZES[0] + SIZES[2]
    staged = parts / "staged.csv"
    poolrank.merge(
        [parts / "group.gpart", parts / "part-1.part", parts / "part-3.part"], 20, out=staged
    )
    assert staged.read_text() == want.read_text()
    with pytest.raises(ValueError, match="holds task 0"):
        poolrank.merge([parts / "group.gpart", parts / "part-*.part"], 20)
    assert summary["parts"] == 4 and summary["rows"] == 3000
    assert list(batch["rank"]) == list(range(1, 21))
    np.testing.assert_array_equal(batch["id"], [str(i) for i in batch["index"]])


def test_direct_files_and_errors(sharded):
    d = sharded
    parts = d / "direct"
    parts.mkdir()
    poolrank.score_shard(d / "m.model", parts / "part-0.part", 10, pool=[d / "s0.npy", d / "s1.npy"])
    # The last two shards start at row 701; a gap where the first part is missing.
    poolrank.score_shard(
        d / "m.model", parts / "part-1.part", 10, pool=[d / "s2.npy", d / "s3.npy"], row_offset=701
    )
    batch, _ = poolrank.merge([parts / "part-0.part", parts / "part-1.part"], 10)
    assert len(batch["index"]) == 10
    with pytest.raises(ValueError, match="no part covers rows 0..701"):
        poolrank.merge([parts / "part-1.part"], 10)
    with pytest.raises(ValueError, match="given twice"):
        poolrank.merge([parts / "part-0.part", parts / "part-0.part", parts / "part-1.part"], 10)
    with pytest.raises(ValueError, match="give either shard_list"):
        poolrank.score_shard(d / "m.model", parts / "x.part", 10)
    with pytest.raises(ValueError, match="task 4 is past the end"):
        poolrank.score_shard(d / "m.model", parts / "x.part", 10, shard_list=d / "list.tsv", index=4)
    with pytest.raises(ValueError, match="no file matches"):
        poolrank.merge([parts / "none-*.part"], 10)
    with pytest.raises(ValueError, match="shards"):
        poolrank.merge([parts / "part-0.part"], 10, shards="sometimes")


def test_one_scorer_for_many_tasks(sharded):
    d = sharded
    scorer = poolrank.ShardScorer(d / "m.model", "cpu")
    assert "cpu" in scorer.backend
    for folder, score in [
        ("reused", lambda out, i: scorer.score(out, 20, shard_list=d / "list.tsv", index=i)),
        ("fresh", lambda out, i: poolrank.score_shard(
            d / "m.model", out, 20, shard_list=d / "list.tsv", index=i, backend="cpu")),
        ("threads", lambda out, i: scorer.score(
            out, 20, shard_list=d / "list.tsv", index=i, threads=1 + i % 2)),
    ]:
        (d / folder).mkdir()
        for i in range(4):
            score(d / folder / f"part-{i}.part", i)
        poolrank.merge([d / folder / "part-*.part"], 20, out=d / folder / "batch.csv")
    assert (d / "reused" / "batch.csv").read_text() == (d / "fresh" / "batch.csv").read_text()
    assert (d / "reused" / "batch.csv").read_text() == (d / "threads" / "batch.csv").read_text()
    with pytest.raises(ValueError, match="threads"):
        scorer.score(d / "x.part", 20, shard_list=d / "list.tsv", index=0, threads=0)
