"""Result objects of `simulate` and `diagnose`: the engine's JSON content as Python values,
the curves as NumPy arrays, and a `.plot()` that draws with matplotlib when it is installed.
Nothing here computes a result; the engine did."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _native


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plot() needs matplotlib: pip install matplotlib") from e
    return plt


class SimulationResult:
    """What `poolrank simulate` produced.

    - `summary`: the content of `summary.json` (settings, seeds, verdicts with intervals,
      fitted hyperparameters per round, timings);
    - `verdicts`: one dict per strategy against random (`word` is `beats-random`,
      `random-like`, `worse-than-random` or `too-few-replicates`);
    - `curves`: columns `strategy`, `replicate`, `round`, `labeled`, `metric`, `value`.

    With several objectives the measures are `hypervolume` (the labeled set's over the pool's)
    and `front_recall`, each strategy has a verdict on both, and `acquired` maps each strategy
    to replicate 0's labeled pool rows at the end (the points of `front.svg`).
    """

    def __init__(self, summary: dict[str, Any], curves: dict[str, Any], table: str,
                 acquired: Optional[dict[str, np.ndarray]] = None):
        self.summary = summary
        self.acquired = acquired
        self.curves = {
            "strategy": np.asarray(curves["strategy"]),
            "replicate": curves["replicate"],
            "round": curves["round"],
            "labeled": curves["labeled"],
            "metric": np.asarray(curves["metric"]),
            "value": curves["value"],
        }
        self._table = table

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        return self.summary["verdicts"]

    @property
    def strategies(self) -> list[str]:
        return self.summary["strategies"]

    @property
    def objectives(self) -> Optional[list[str]]:
        """The objectives (`NAME:min`/`NAME:max`) of a multi-objective simulation, else None."""
        return self.summary.get("objectives")

    def _metric(self, metric: Optional[str]) -> str:
        if metric is not None:
            return metric
        return "hypervolume" if self.objectives else "topk_recall"

    def curve(self, strategy: str, metric: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
        """`(labeled, values)`: the labeled count per round (from replicate 0) and the values
        as a `(replicates, rounds + 1)` array. `metric` defaults to `topk_recall`, or to
        `hypervolume` with several objectives."""
        metric = self._metric(metric)
        c = self.curves
        keep = (c["strategy"] == strategy) & (c["metric"] == metric)
        if not keep.any():
            raise ValueError(f"no curve for strategy {strategy!r} and metric {metric!r}")
        reps = c["replicate"][keep]
        rounds = c["round"][keep]
        values = np.full((reps.max() + 1, rounds.max() + 1), np.nan)
        values[reps, rounds] = c["value"][keep]
        labeled = np.zeros(rounds.max() + 1, dtype=np.int64)
        first = reps == 0
        labeled[rounds[first]] = c["labeled"][keep][first]
        return labeled, values

    def plot(self, metric: Optional[str] = None, ax: Optional[Any] = None):
        """Mean curve per strategy against the labeled count, with the replicates' range as a
        band and random drawn as the reference (as `recall.svg`, or `hypervolume.svg` with
        several objectives)."""
        metric = self._metric(metric)
        if ax is None:
            _, ax = _pyplot().subplots(figsize=(6, 4))
        for s in self.strategies:
            labeled, values = self.curve(s, metric)
            mean = np.nanmean(values, axis=0)
            style = {"color": "black", "linestyle": "--"} if s == "random" else {}
            ax.plot(labeled, mean, label=s, **style)
            ax.fill_between(labeled, np.nanmin(values, axis=0), np.nanmax(values, axis=0),
                            alpha=0.15, **({"color": "black"} if s == "random" else {}))
        ax.set_xlabel("labeled candidates")
        ax.set_ylabel(metric.replace("_", " "))
        ax.legend()
        return ax

    def __str__(self) -> str:
        return self._table

    def __repr__(self) -> str:
        many = self.objectives is not None
        words = ", ".join(
            f"{v['strategy']}{' on ' + v['metric'] if many else ''}: {v['final_round']['verdict']}"
            for v in self.verdicts
        )
        return f"SimulationResult({words})"


class Diagnosis:
    """What `poolrank diagnose` reported: `report` is the content of `report.json`; `verdict`
    its plain verdict (`likely-beats-random`, `likely-random-like` or `uncertain`)."""

    def __init__(self, report: dict[str, Any], text: str):
        self.report = report
        self._text = text

    @property
    def verdict(self) -> str:
        return self.report["verdict"]["verdict"]

    @property
    def reasons(self) -> list[Any]:
        return self.report["verdict"]["reasons"]

    def plot(self, ax: Optional[Any] = None):
        """The calibration plot: observed against expected coverage of the central intervals
        in cross-validation (the diagonal is perfect calibration)."""
        cal = self.report["model"]["cv"]["calibration"]
        if ax is None:
            _, ax = _pyplot().subplots(figsize=(4, 4))
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1)
        ax.plot([e for e, _ in cal], [o for _, o in cal], marker="o")
        ax.set_xlabel("expected coverage")
        ax.set_ylabel("observed coverage")
        return ax

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Diagnosis(verdict={self.verdict!r})"


def simulate(pool, y, **kwargs) -> SimulationResult:
    """Does active learning beat random on this fully labeled pool? Runs `poolrank simulate`
    (paired replicates, a bootstrap verdict per strategy against random) on arrays. Keyword
    arguments are the command's flags (`strategies`, `init`, `batch`, `rounds`, `topk`, `reps`,
    `seed`, `minimize`, `batch_mode`, `objective`, `test`, `test_index`, `kernel`, `noise`,
    `signal_var`, `lengthscale`, `inducing`, `exact`, `refit`, `backend`, `beta`, `xi`, `features`,
    `out`, `prune`: `False` gives every candidate a variance each round, the picks are the
    same; `temperature` of `batch_mode="softmax"`, `power` of `"power"` and `"softrank"`;
    `samples` of qPO; `joint_sampler="pathwise"` and `prior_features` for `thompson` and `qpo`);
    sizes are counts (int) or fractions (float).

    Several objectives: `objectives=["dock:min", "qed:max"]` (2 or 3) with `y` a mapping
    `{column: one value per pool row}` or a labels CSV path whose `id` column holds pool rows;
    `strategies` among `ehvi`, `phvi`, `pareto-ucb`, `parego` (default all four; random always
    runs), `beta` of `pareto-ucb`, `ref_point` of `ehvi`/`phvi` (default: from each round's
    labels), `batch_mode` `topk` or `diverse`, `constraints` (`"qed>=0.5"` or a list; the
    measures then count only the candidates that meet them, and `y` must hold their columns).
    The measures are hypervolume and front recall;
    `minimize`, `objective`, `test`, `test_index`, `refit=False`, `xi` and `samples` are
    refused there."""
    return SimulationResult(*_native._simulate(pool, y, **kwargs))


def diagnose(pool, labeled_index, y, **kwargs) -> Diagnosis:
    """Is active learning likely to beat random here, and why? Runs `poolrank diagnose` on
    arrays with labels for the rows `labeled_index`. Keyword arguments are the command's flags
    (`acq`, `batch`, `minimize`, `folds`, `nn_sample`, `objective`, `test_index`, `seed`,
    `backend`, `kernel`, `noise`, `signal_var`, `lengthscale`, `inducing`, `exact`, `beta`, `xi`,
    `features`, `out`)."""
    return Diagnosis(*_native._diagnose(pool, labeled_index, y, **kwargs))
