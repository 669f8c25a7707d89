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
    merge,
    open_pool,
    read_pool,
    score_shard,
    select,
    shard_list,
)
from .results import Diagnosis, SimulationResult, diagnose, simulate

__all__ = [
    "GP",
    "DeviceError",
    "PoolFile",
    "__version__",
    "devices",
    "open_pool",
    "read_pool",
    "select",
    "score_shard",
    "merge",
    "shard_list",
    "simulate",
    "diagnose",
    "SimulationResult",
    "Diagnosis",
]
