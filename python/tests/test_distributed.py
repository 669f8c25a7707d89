"""poolrank.distributed.score_pool on a local Ray cluster: 8 shards give exactly the batch of
one process (``select --model`` on the whole pool) for UCB, Thompson, random and diverse, on
Ray tasks and on actors; a worker killed mid-way is retried and the batch is unchanged."""

import json
import os
import pathlib
import shutil
import tempfile

import pytest

# scripts/test.sh installs Ray (the version the `ray` extra pins), so CI runs these.
ray = pytest.importorskip("ray")

from conftest import write_sharded_pool  # noqa: E402
from poolrank import distributed  # noqa: E402

SIZES = [300, 1, 450, 250, 500, 199, 600, 700]


@pytest.fixture(scope="module")
def cluster():
    # A short folder: Ray's socket paths must stay under the Unix limit.
    root = pathlib.Path(tempfile.mkdtemp(prefix="prray", dir="/tmp"))
    saved = {k: os.environ.get(k) for k in ("HOME", "TMPDIR", "RAY_TMPDIR")}
    for name in ("home", "tmp", "ray", "faults"):
        (root / name).mkdir()
    os.environ.update(HOME=str(root / "home"), TMPDIR=str(root / "tmp"), RAY_TMPDIR=str(root / "ray"))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(root / "ray"),
        runtime_env={
            "env_vars": {
                "POOLRANK_RAY_FAULT": str(root / "faults"),
                # The GPU actors' test runs on a software adapter (Mesa's llvmpipe in CI).
                "POOLRANK_ALLOW_SOFTWARE_GPU": "1",
            }
        },
    )
    yield root
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pool(tmp_path_factory, poolrank_cli):
    d = tmp_path_factory.mktemp("raypool")
    write_sharded_pool(d, SIZES, seed=9, relevant=25, labels=80, poolrank_cli=poolrank_cli)
    with open(d / "pending.txt", "w") as f:
        f.write("\n".join(str(i) for i in (5, 310, 2999)) + "\n")
    return d


def one_process(poolrank_cli, d, out, *flags):
    poolrank_cli(
        "select", "--pool", d / "pool.npy", "--model", d / "m.model", "--pending",
        d / "pending.txt", "--quiet", "--out", out, *flags,
    )
    return pathlib.Path(out).read_text()


@pytest.mark.parametrize(
    "name, flags, options",
    [
        ("ucb", ["--acq", "ucb"], dict(acq="ucb")),
        ("thompson-marginal", ["--acq", "thompson-marginal", "--seed", "3"], dict(acq="thompson-marginal", seed=3)),
        ("random", ["--acq", "random", "--seed", "1"], dict(acq="random", seed=1)),
        ("diverse", ["--acq", "ucb", "--batch-mode", "diverse"], dict(acq="ucb", batch_mode="diverse")),
    ],
)
def test_ray_batch_is_the_one_process_batch(cluster, pool, poolrank_cli, name, flags, options):
    d = pool
    want = one_process(poolrank_cli, d, d / f"one-{name}.csv", "--batch", "20", *flags)
    shards = [d / f"s{i}.npy" for i in range(8)]
    out = d / f"ray-{name}.csv"
    batch, summary = distributed.score_pool(
        shards, d / "m.model", 20, out=out, pending=d / "pending.txt", progress=False, **options
    )
    assert out.read_text() == want
    assert summary["parts"] == 8 and summary["rows"] == 3000 and summary["pending"] == 3
    assert len(batch["index"]) == 20


def test_actors_and_tasks_of_two_shards(cluster, pool, poolrank_cli):
    d = pool
    want = one_process(poolrank_cli, d, d / "one-actors.csv", "--batch", "15", "--acq", "ei")
    poolrank_cli("shard-list", "--out", d / "list.tsv", *[d / f"s{i}.npy" for i in range(8)])
    batch, summary = distributed.score_pool(
        d / "list.tsv", d / "m.model", 15, out=d / "actors.csv", pending=d / "pending.txt",
        acq="ei", per_task=2, actors=2, gpus_per_actor=0, backend="cpu", progress=False,
    )
    assert (d / "actors.csv").read_text() == want
    assert summary["parts"] == 4 and summary["tasks"] == 4


def test_gpu_actors_pick_the_one_process_batch(cluster, pool, poolrank_cli):
    """Actors on the GPU backend (each opens its device once) give the one-process picks, in
    order; their scores may differ from the CPU's in the last bits."""
    from poolrank import _native

    d = pool
    os.environ["POOLRANK_ALLOW_SOFTWARE_GPU"] = "1"
    try:
        _native.ShardScorer(d / "m.model", "gpu")
    except Exception as e:  # no Vulkan, Metal or DX12 adapter at all on this machine
        pytest.skip(f"no GPU adapter: {e}")
    finally:
        os.environ.pop("POOLRANK_ALLOW_SOFTWARE_GPU")
    want = one_process(poolrank_cli, d, d / "one-gpu.csv", "--batch", "25", "--acq", "ucb")
    _, summary = distributed.score_pool(
        [d / f"s{i}.npy" for i in range(8)], d / "m.model", 25, out=d / "gpu.csv",
        pending=d / "pending.txt", acq="ucb", per_task=2, actors=2, gpus_per_actor=0,
        progress=False,
    )

    def picks(text):
        return [line.split(",")[2] for line in text.splitlines()[1:]]

    got = (d / "gpu.csv").read_text()
    assert len(picks(got)) == 25
    assert picks(got) == picks(want)
    assert summary["tasks"] == 4
    assert list(summary["backends"]) != [] and all("gpu" in b for b in summary["backends"]), summary

def test_a_killed_worker_is_retried_and_the_batch_is_unchanged(cluster, pool, poolrank_cli):
    d = pool
    want = one_process(poolrank_cli, d, d / "one-fault.csv", "--batch", "20", "--acq", "thompson-marginal")
    (cluster / "faults" / "crash-3").touch()
    parts = d / "fault-parts"
    batch, _ = distributed.score_pool(
        [d / f"s{i}.npy" for i in range(8)], d / "m.model", 20, out=d / "fault.csv",
        pending=d / "pending.txt", acq="thompson-marginal", parts_dir=parts, progress=False,
    )
    assert (cluster / "faults" / "crashed-3").exists(), "the worker of task 3 was not killed"
    assert (d / "fault.csv").read_text() == want
    assert sorted(p.name for p in parts.glob("part-*.part")) == [f"part-{i}.part" for i in range(8)]
    # Four tasks are submitted at first; those submitted after two parts came back (at least
    # the last two; one shard has a single row) were given a floor.
    metas = [json.loads(p.read_text().splitlines()[1][len("#meta "):]) for p in parts.glob("*.part")]
    assert sum(m["floor"] is not None for m in metas) >= 2, [m["floor"] for m in metas]


def test_a_task_that_keeps_failing_is_named(cluster, pool):
    d = pool
    # A stale list: the shard has 300 rows, the list says 299; every attempt fails.
    (d / "stale.tsv").write_text("s0.npy\t299\n")
    with pytest.raises(RuntimeError, match="task 0 of 1 failed after 1 retries") as e:
        distributed.score_pool(d / "stale.tsv", d / "m.model", 5, max_retries=1, progress=False)
    assert "has 300 rows, but the shard list gives 299" in str(e.value)
