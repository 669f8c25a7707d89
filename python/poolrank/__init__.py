"""poolrank: rank very large candidate pools for active learning.

The engine is the Rust library of this repository; this package is its binding
(``poolrank._native``) with the same answers as the command line. See the README.
"""

from ._native import (
    GP,
    DeviceError,
    PoolFile,
    __version__,
    devices,
    fit_objectives,
    merge,
    merge_to_part,
    open_pool,
    read_pool,
    ShardScorer,
    select,
    shard_list,
)
from .results import Diagnosis, SimulationResult, diagnose, simulate


def score_shard(model, out, k, *, backend="auto", **options):
    """Scores one task's shards with the saved model at ``model`` and writes its part to
    ``out``: one call of :class:`ShardScorer` (which a worker keeps to score many tasks with
    the model read and the GPU opened once). ``options`` are those of
    :meth:`ShardScorer.score`. Returns the part's meta as a dict."""
    return ShardScorer(model, backend).score(out, k, **options)


__all__ = [
    "GP",
    "DeviceError",
    "PoolFile",
    "__version__",
    "devices",
    "fit_objectives",
    "open_pool",
    "read_pool",
    "select",
    "score_shard",
    "ShardScorer",
    "merge",
    "merge_to_part",
    "shard_list",
    "simulate",
    "diagnose",
    "SimulationResult",
    "Diagnosis",
]
