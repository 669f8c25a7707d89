"""Type stubs of the native module (the Rust engine's binding)."""

from os import PathLike
from typing import Any, Iterator, Literal, Mapping, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = Any  # a 2-D NumPy array or a scipy.sparse matrix
FeaturesHint = Optional[Literal["bits", "counts", "dense"]]
BackendName = Literal["auto", "cpu", "gpu"]

class DeviceError(RuntimeError):
    """A GPU problem: no adapter fits, a device limit is exceeded, or wgpu failed."""

class GP:
    """A Gaussian process on fingerprints or features, fitted by the poolrank engine."""

    def __init__(
        self,
        kernel: Optional[Literal["tanimoto", "minmax", "rbf", "matern52"]] = None,
        noise: Optional[float] = None,
        signal_var: Optional[float] = None,
        lengthscale: Optional[float] = None,
        inducing: Optional[int] = None,
        exact: bool = False,
    ) -> None: ...
    def fit(self, x: ArrayLike, y: npt.ArrayLike, features: FeaturesHint = None) -> "GP": ...
    @overload
    def predict(
        self,
        x: ArrayLike,
        return_std: Literal[False] = False,
        backend: BackendName = "auto",
        batch_size: Optional[int] = None,
        features: FeaturesHint = None,
    ) -> npt.NDArray[np.float64]: ...
    @overload
    def predict(
        self,
        x: ArrayLike,
        return_std: Literal[True],
        backend: BackendName = "auto",
        batch_size: Optional[int] = None,
        features: FeaturesHint = None,
    ) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
    @property
    def kernel(self) -> str: ...
    @property
    def noise(self) -> float: ...
    @property
    def signal_var(self) -> float: ...
    @property
    def lengthscale(self) -> Optional[float]: ...
    @property
    def n_train(self) -> int: ...
    @property
    def fit_info(self) -> dict[str, Any]: ...
    def save(self, path: Union[str, PathLike[str]]) -> None: ...
    @staticmethod
    def load(path: Union[str, PathLike[str]]) -> "GP": ...
    def __getstate__(self) -> Tuple[Any, ...]: ...
    def __setstate__(self, state: Tuple[Any, ...]) -> None: ...

class PoolFile:
    """A pool file read tile by tile: yields `(ids, X)`."""

    def __iter__(self) -> Iterator[Tuple[list[str], Any]]: ...
    def __next__(self) -> Tuple[list[str], Any]: ...

def devices() -> dict[str, Any]: ...
def open_pool(
    path: Union[str, PathLike[str]],
    ids: Optional[Union[str, PathLike[str]]] = None,
    batch_size: int = 65536,
) -> PoolFile: ...
def read_pool(
    path: Union[str, PathLike[str]], ids: Optional[Union[str, PathLike[str]]] = None
) -> Tuple[list[str], Any]: ...

Size = Union[int, float]  # a count, or a fraction of the pool
AcqName = Literal[
    "greedy", "ucb", "ei", "pi", "variance", "thompson", "thompson-marginal", "qpo", "random"
]
# With `objectives`: the multi-objective acquisitions.
ParetoAcqName = Literal["ehvi", "phvi", "pareto-ucb", "parego"]
# `["dock:min", "qed:max"]` or `"dock:min,qed:max"` (2 or 3 label columns).
ObjectivesArg = Union[str, Sequence[str]]
# With `objectives`: `{column: values}` aligned with `labeled_index` (NaN or None where missing),
# or the path of a labels CSV whose `id` column holds pool row numbers (`labeled_index=None`).
MultiLabelsArg = Union[Mapping[str, npt.ArrayLike], str, PathLike[str]]
def fit_objectives(
    x: ArrayLike,
    y: Mapping[str, npt.ArrayLike],
    objectives: ObjectivesArg,
    kernel: Optional[Literal["tanimoto", "minmax", "rbf", "matern52"]] = None,
    noise: Optional[float] = None,
    signal_var: Optional[float] = None,
    lengthscale: Optional[float] = None,
    inducing: Optional[int] = None,
    exact: bool = False,
    features: FeaturesHint = None,
) -> dict[str, GP]: ...

# `"qed>=0.5"`, `"logp<=5"`, or a list of them.
ConstraintsArg = Union[str, Sequence[str]]

@overload
def select(
    pool: ArrayLike,
    labeled_index: npt.ArrayLike,
    y: npt.ArrayLike,
    acq: Optional[AcqName] = None,
    batch: Optional[Size] = None,
    minimize: bool = False,
    seed: int = 0,
    backend: BackendName = "auto",
    kernel: Optional[str] = None,
    noise: Optional[float] = None,
    signal_var: Optional[float] = None,
    lengthscale: Optional[float] = None,
    inducing: Optional[int] = None,
    exact: bool = False,
    batch_mode: Literal["topk", "diverse", "softmax", "power", "softrank"] = "topk",
    max_sim: Optional[float] = None,
    pending_index: Optional[npt.ArrayLike] = None,
    features: FeaturesHint = None,
    beta: float = 2.0,
    xi: float = 0.0,
    return_summary: Literal[False] = False,
    prune: bool = True,
    shortlist: Optional[int] = None,
    samples: Optional[int] = None,
    temperature: float = 0.1,
    power: float = 1.0,
    joint_sampler: Literal["shortlist", "pathwise"] = "shortlist",
    prior_features: int = 1024,
    objectives: None = None,
    ref_point: None = None,
    constraints: None = None,
    round: int = 0,
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
@overload
def select(
    pool: ArrayLike,
    labeled_index: npt.ArrayLike,
    y: npt.ArrayLike,
    acq: Optional[AcqName] = None,
    batch: Optional[Size] = None,
    minimize: bool = False,
    seed: int = 0,
    backend: BackendName = "auto",
    kernel: Optional[str] = None,
    noise: Optional[float] = None,
    signal_var: Optional[float] = None,
    lengthscale: Optional[float] = None,
    inducing: Optional[int] = None,
    exact: bool = False,
    batch_mode: Literal["topk", "diverse", "softmax", "power", "softrank"] = "topk",
    max_sim: Optional[float] = None,
    pending_index: Optional[npt.ArrayLike] = None,
    features: FeaturesHint = None,
    beta: float = 2.0,
    xi: float = 0.0,
    *,
    return_summary: Literal[True],
    prune: bool = True,
    shortlist: Optional[int] = None,
    samples: Optional[int] = None,
    temperature: float = 0.1,
    power: float = 1.0,
    joint_sampler: Literal["shortlist", "pathwise"] = "shortlist",
    prior_features: int = 1024,
    objectives: None = None,
    ref_point: None = None,
    constraints: None = None,
    round: int = 0,
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], dict[str, Any]]: ...
# With `objectives`: `(indices, scores, posterior)`, `posterior` holding `mean_<column>`,
# `sd_<column>` and, with constraints, `p_feasible` arrays aligned with the picks.
Posterior = dict[str, npt.NDArray[np.float64]]

@overload
def select(
    pool: ArrayLike,
    labeled_index: Optional[npt.ArrayLike],
    y: MultiLabelsArg,
    acq: Optional[ParetoAcqName] = None,
    batch: Optional[Size] = None,
    minimize: Literal[False] = False,
    seed: int = 0,
    backend: BackendName = "auto",
    kernel: Optional[str] = None,
    noise: Optional[float] = None,
    signal_var: Optional[float] = None,
    lengthscale: Optional[float] = None,
    inducing: Optional[int] = None,
    exact: bool = False,
    batch_mode: Literal["topk"] = "topk",
    max_sim: None = None,
    pending_index: Optional[npt.ArrayLike] = None,
    features: FeaturesHint = None,
    beta: float = 2.0,
    xi: float = 0.0,
    return_summary: Literal[False] = False,
    prune: bool = True,
    shortlist: None = None,
    samples: None = None,
    temperature: float = 0.1,
    power: float = 1.0,
    joint_sampler: Literal["shortlist"] = "shortlist",
    prior_features: int = 1024,
    *,
    objectives: ObjectivesArg,
    ref_point: Optional[Sequence[float]] = None,
    constraints: Optional[ConstraintsArg] = None,
    round: int = 0,
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], Posterior]: ...
@overload
def select(
    pool: ArrayLike,
    labeled_index: Optional[npt.ArrayLike],
    y: MultiLabelsArg,
    acq: Optional[ParetoAcqName] = None,
    batch: Optional[Size] = None,
    minimize: Literal[False] = False,
    seed: int = 0,
    backend: BackendName = "auto",
    kernel: Optional[str] = None,
    noise: Optional[float] = None,
    signal_var: Optional[float] = None,
    lengthscale: Optional[float] = None,
    inducing: Optional[int] = None,
    exact: bool = False,
    batch_mode: Literal["topk"] = "topk",
    max_sim: None = None,
    pending_index: Optional[npt.ArrayLike] = None,
    features: FeaturesHint = None,
    beta: float = 2.0,
    xi: float = 0.0,
    *,
    return_summary: Literal[True],
    prune: bool = True,
    shortlist: None = None,
    samples: None = None,
    temperature: float = 0.1,
    power: float = 1.0,
    joint_sampler: Literal["shortlist"] = "shortlist",
    prior_features: int = 1024,
    objectives: ObjectivesArg,
    ref_point: Optional[Sequence[float]] = None,
    constraints: Optional[ConstraintsArg] = None,
    round: int = 0,
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], Posterior, dict[str, Any]]: ...
# With `objectives`, a fourth item: each strategy's labeled rows at the end of replicate 0.
def _simulate(
    pool: ArrayLike, y: Union[npt.ArrayLike, MultiLabelsArg], **kwargs: Any
) -> Union[
    Tuple[dict[str, Any], dict[str, Any], str],
    Tuple[dict[str, Any], dict[str, Any], str, dict[str, npt.NDArray[np.int64]]],
]: ...
def _diagnose(
    pool: ArrayLike, labeled_index: npt.ArrayLike, y: npt.ArrayLike, **kwargs: Any
) -> Tuple[dict[str, Any], str]: ...

Path = Union[str, PathLike[str]]

def shard_list(
    shards: list[Path],
    out: Path,
    pool_format: Optional[str] = None,
    id_col: str = "id",
    smiles_col: str = "smiles",
) -> int: ...
class ShardScorer:
    """A worker's scorer: the saved model read once and the backend opened once."""

    def __init__(self, model: Path, backend: BackendName = "auto") -> None: ...
    @property
    def backend(self) -> str: ...
    def score(
        self,
        out: Path,
        k: int,
        shard_list: Optional[Path] = None,
        index: Optional[int] = None,
        per_task: int = 1,
        pool: Optional[list[Path]] = None,
        row_offset: int = 0,
        acq: AcqName = "ucb",
        beta: float = 2.0,
        xi: float = 0.0,
        seed: int = 0,
        round: int = 0,
        pending: Optional[Path] = None,
        batch_mode: Literal["topk", "diverse"] = "topk",
        shortlist: Optional[int] = None,
        max_sim: Optional[float] = None,
        prune: bool = True,
        tile_rows: int = 65536,
        pool_format: Optional[str] = None,
        id_col: str = "id",
        smiles_col: str = "smiles",
        floor: Optional[Tuple[float, int]] = None,
        samples: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> dict[str, Any]: ...

def merge(
    parts: list[Path],
    k: int,
    out: Optional[Path] = None,
    summary: Optional[Path] = None,
    shard_list: Optional[Path] = None,
    model: Optional[Path] = None,
    shards: Literal["stat", "verify", "skip"] = "stat",
) -> Tuple[dict[str, Any], dict[str, Any]]: ...

def merge_to_part(
    parts: list[Path],
    k: int,
    out: Path,
    shard_list: Optional[Path] = None,
    model: Optional[Path] = None,
    shards: Literal["stat", "verify", "skip"] = "stat",
) -> dict[str, Any]: ...
