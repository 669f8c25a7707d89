"""Score a pool's shards on a Ray cluster and merge them exactly: the batch is the one
``poolrank select --model`` picks on the whole pool (README, "Past one machine").

The model travels once through Ray's object store (``ray.put``); the shards are read where
the workers run (a shared disk, paths in the shard list made absolute). CPU shards run as Ray
tasks, retried when a worker dies or raises (``max_retries``, ``retry_exceptions``); GPU
workers run as actors that keep their process, the model read and the GPU opened
(:class:`poolrank.ShardScorer`) from task to task (Ray would otherwise start a fresh worker
for every GPU task). The driver keeps at most
``max_in_flight`` tasks submitted (``ray.wait``), writes each part as it arrives and merges
them with :func:`poolrank.merge`. Tasks submitted after others get the k-th best score found
so far as a floor (``floors=True``): what cannot beat it gets no variance and is not kept, and
the merge checks that the batch reaches every floor. The engine releases the GIL while it
scores.

Tested with Ray 2.60.0 (the ``poolrank[ray]`` extra pins it).
"""

from __future__ import annotations

import heapq
import json
import math
import os
import pathlib
import sys
import tempfile

from . import _native

#: The Ray version these functions were tested with.
TESTED_RAY = "2.60.0"


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - the message is the point
        raise ImportError(
            f"poolrank.distributed needs Ray: pip install 'poolrank[ray]' (tested with {TESTED_RAY})"
        ) from e
    return ray


def _absolute_list(shards, workdir: pathlib.Path, read_options: dict) -> tuple[bytes, int]:
    """The shard list's bytes with absolute paths, and its number of shards. ``shards`` is a
    shard list file, or shard files whose rows are counted here once."""
    if isinstance(shards, (str, os.PathLike)):
        listed = pathlib.Path(shards)
    else:
        listed = workdir / "given-shards.tsv"
        _native.shard_list([pathlib.Path(s) for s in shards], listed, **read_options)
    folder = listed.absolute().parent
    lines = ["# poolrank shard list (absolute paths, for the workers)"]
    count = 0
    for line in listed.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        for i in (0, 2):
            if i < len(fields) and fields[i].strip():
                fields[i] = os.path.normpath(folder / fields[i].strip())
        lines.append("\t".join(fields))
        count += 1
    if count == 0:
        raise ValueError(f"{listed}: the shard list names no shard")
    return ("\n".join(lines) + "\n").encode(), count


def _maybe_crash(index: int) -> None:
    """Fault injection for the tests: with ``POOLRANK_RAY_FAULT=DIR`` and ``DIR/crash-INDEX``
    present, the first attempt of task INDEX kills its worker process."""
    folder = os.environ.get("POOLRANK_RAY_FAULT")
    if not folder:
        return
    ask = pathlib.Path(folder) / f"crash-{index}"
    done = pathlib.Path(folder) / f"crashed-{index}"
    if ask.exists() and not done.exists():
        done.touch()
        os._exit(1)


def _score_in(scorer, folder: pathlib.Path, index: int, settings: dict) -> bytes:
    """Scores task ``index`` with ``scorer`` and the list and pending files in ``folder``."""
    _maybe_crash(index)
    part = folder / f"part-{index}.part"
    pending = folder / "pending.txt"
    scorer.score(
        part,
        shard_list=folder / "shards.tsv",
        index=index,
        pending=pending if pending.exists() else None,
        **settings,
    )
    data = part.read_bytes()
    part.unlink()
    return data


def _stage(folder: pathlib.Path, model: bytes, shard_list: bytes, pending: bytes | None) -> None:
    (folder / "model.model").write_bytes(model)
    (folder / "shards.tsv").write_bytes(shard_list)
    if pending is not None:
        (folder / "pending.txt").write_bytes(pending)


def _task(model: bytes, shard_list: bytes, pending: bytes | None, index: int, settings: dict) -> bytes:
    """One CPU task: the model and list as files in a temporary folder, then the part's bytes."""
    settings = dict(settings)
    backend = settings.pop("backend")
    with tempfile.TemporaryDirectory(prefix="poolrank-task-") as d:
        folder = pathlib.Path(d)
        _stage(folder, model, shard_list, pending)
        scorer = _native.ShardScorer(folder / "model.model", backend)
        return _score_in(scorer, folder, index, settings)


class _Worker:
    """A long-lived worker (a GPU actor): the model read and the backend (its GPU) opened once,
    then any number of tasks."""

    def __init__(self, model: bytes, shard_list: bytes, pending: bytes | None, backend: str):
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="poolrank-actor-"))
        _stage(self.folder, model, shard_list, pending)
        self.scorer = _native.ShardScorer(self.folder / "model.model", backend)

    def score(self, index: int, settings: dict) -> bytes:
        return _score_in(self.scorer, self.folder, index, dict(settings))


class _Floor:
    """The k-th best (score, row) of the parts received so far."""

    def __init__(self):
        self.keep = None
        self.best = []  # a min-heap of (score, -row): the worst kept on top

    def absorb(self, part: bytes) -> None:
        for line in part.split(b"\n"):
            if self.keep is None and line.startswith(b"#meta "):
                settings = json.loads(line[6:])["settings"]
                self.keep = settings["shortlist"] or settings["k"]
            if not line or line.startswith(b"#"):
                continue
            score, row, _ = line.split(b"\t", 2)
            item = (float(score), -int(row))
            if math.isnan(item[0]):
                continue
            if len(self.best) < self.keep:
                heapq.heappush(self.best, item)
            elif item > self.best[0]:
                heapq.heapreplace(self.best, item)

    def value(self):
        if self.keep is None or len(self.best) < self.keep:
            return None
        score, row = self.best[0]
        return (score, -row)


def score_pool(
    shards,
    model,
    k: int,
    *,
    out=None,
    summary=None,
    parts_dir=None,
    per_task: int = 1,
    acq: str = "ucb",
    beta: float = 2.0,
    xi: float = 0.0,
    seed: int = 0,
    round: int = 0,
    pending=None,
    batch_mode: str = "topk",
    shortlist: int | None = None,
    max_sim: float | None = None,
    prune: bool = True,
    tile_rows: int = 65_536,
    actors: int = 0,
    gpus_per_actor: float = 1.0,
    backend: str | None = None,
    cpus_per_task: int = 1,
    max_in_flight: int | None = None,
    max_retries: int = 3,
    floors: bool = True,
    progress: bool = True,
    check_shards: str = "stat",
    pool_format: str | None = None,
    id_col: str = "id",
    smiles_col: str = "smiles",
):
    """Scores every shard of a pool on the connected Ray cluster and merges the parts.

    ``shards``: a shard list file (``poolrank shard-list``) or the shard files in pool order
    (their rows are counted here once). ``model``: a saved model file. ``k``: the batch. The
    scoring settings are those of :func:`poolrank.select` and ``poolrank score-shard``.

    Workers: with ``actors=0`` (the default) each task is a Ray task of ``cpus_per_task`` CPUs
    on the CPU backend; with ``actors=N``, N actors of ``gpus_per_actor`` GPUs each (the GPU
    backend) take the tasks one at a time. ``backend`` overrides the backend of either. A CPU
    task runs on ``cpus_per_task`` threads of its own, whatever the worker process ran before.

    ``floors``: each task gets the k-th best of the parts already received as a floor (the
    batch is the same; later tasks compute fewer variances).

    Faults: a task whose worker dies or raises is retried up to ``max_retries`` times (for
    actors, the actor is restarted as often); a task that still fails raises ``RuntimeError``
    naming it. A rerun with the same model and settings gives the same batch.

    Returns ``(batch, summary)`` as :func:`poolrank.merge`; ``out`` and ``summary`` also write
    the batch CSV and the JSON summary, ``parts_dir`` keeps the parts (default: a temporary
    folder).
    """
    ray = _ray()
    if not ray.is_initialized():
        ray.init()
    read_options = {"pool_format": pool_format, "id_col": id_col, "smiles_col": smiles_col}
    with tempfile.TemporaryDirectory(prefix="poolrank-driver-") as scratch:
        scratch = pathlib.Path(scratch)
        parts = pathlib.Path(parts_dir) if parts_dir is not None else scratch / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        list_bytes, n_shards = _absolute_list(shards, scratch, read_options)
        list_path = scratch / "shards.tsv"
        list_path.write_bytes(list_bytes)
        tasks = -(-n_shards // max(per_task, 1))
        model_ref = ray.put(pathlib.Path(model).read_bytes())
        list_ref = ray.put(list_bytes)
        pending_ref = ray.put(pathlib.Path(pending).read_bytes() if pending is not None else None)
        settings = dict(
            k=k, per_task=per_task, acq=acq, beta=beta, xi=xi, seed=seed, round=round,
            batch_mode=batch_mode, shortlist=shortlist, max_sim=max_sim, prune=prune,
            tile_rows=tile_rows, **read_options,
        )
        if actors > 0:
            actor_class = ray.remote(_Worker).options(
                num_gpus=gpus_per_actor, num_cpus=cpus_per_task,
                max_restarts=max_retries, max_task_retries=max_retries,
            )
            workers = [
                actor_class.remote(model_ref, list_ref, pending_ref, backend or "gpu")
                for _ in range(actors)
            ]
            idle = list(workers)
            limit = actors

            def submit(i, floor):
                worker = idle.pop()
                return worker.score.remote(i, dict(settings, floor=floor)), worker
        else:
            remote = ray.remote(_task).options(
                num_cpus=cpus_per_task, max_retries=max_retries, retry_exceptions=True,
            )
            limit = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)) // cpus_per_task)
            task_settings = dict(settings, threads=cpus_per_task, backend=backend or "cpu")

            def submit(i, floor):
                return remote.remote(
                    model_ref, list_ref, pending_ref, i, dict(task_settings, floor=floor)
                ), None

        if max_in_flight is not None:
            limit = min(limit, max_in_flight)
        waiting = list(range(tasks))
        running = {}
        done = 0
        floor = _Floor()
        while waiting or running:
            while waiting and len(running) < limit:
                i = waiting.pop(0)
                ref, worker = submit(i, floor.value() if floors else None)
                running[ref] = (i, worker)
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                i, worker = running.pop(ref)
                if worker is not None:
                    idle.append(worker)
                try:
                    data = ray.get(ref)
                except Exception as e:
                    for r in running:
                        ray.cancel(r)
                    raise RuntimeError(
                        f"task {i} of {tasks} failed after {max_retries} retries: {e}"
                    ) from e
                floor.absorb(data)
                staged = parts / f".part-{i}.part.tmp"
                staged.write_bytes(data)
                staged.replace(parts / f"part-{i}.part")
                done += 1
                if progress:
                    print(f"\rpoolrank: scored {done} of {tasks} tasks", end="", file=sys.stderr)
        if progress:
            print(file=sys.stderr)
        return _native.merge(
            [parts / "part-*.part"], k, out=out, summary=summary, shard_list=list_path,
            model=model, shards=check_shards,
        )
