"""Work units: what an executor runs on a worker that holds a loaded model.

A unit is a picklable callable ``unit(state) -> dict`` whose result is JSON-able (numbers, strings, lists, dicts:
no arrays, no frames) and whose ``key`` names it in progress lines, result rows and failure reports. A worker builds
its state once with a loader (a picklable callable; ``ModelLoader`` returns a ``DrivingModel``) and runs many units
on it, so the model load is paid once per worker, not once per bag. ``EvaluateBag`` is the open-loop evaluation of
one bag; ``rollouts.RolloutSet`` (the closed-loop rollouts of one scenario and seed) is the other kind of unit, run
by the same executors on a worker state of its own (``rollouts.SimWorker``).

Units must be deterministic: their result depends on the unit and the model's weights and settings only, not on
which worker runs it or what ran before (the torch backend seeds each inference from ``(seed, t0)``), so a fleet
run gives the same per-bag numbers as a serial one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.core.types import DrivingModel
from alpamayo_ros.tools.fleet.codec import encode_evaluation
from alpamayo_ros.tools.fleet.inputs import BagEntry


class WorkUnit(Protocol):
    """One piece of work for a worker holding a loaded model (picklable: it travels to the worker)."""

    @property
    def key(self) -> str:
        """Unique name of the unit within a run (a bag path, a scenario and seed)."""
        ...

    def __call__(self, state: Any, /) -> dict[str, Any]:
        """Run on the worker's loaded ``state`` (a model; a simulation worker); return a JSON-able result. Raises on
        failure (the executor retries, then reports)."""
        ...


class Loader(Protocol):
    """Builds a worker's model once (picklable: it travels to each worker)."""

    def __call__(self) -> Any: ...


@dataclass(frozen=True)
class ModelLoader:
    """Loads ``spec`` through the runtime registry on the worker (``spec.device`` is honoured there: on a GPU
    worker Ray restricts CUDA_VISIBLE_DEVICES to the worker's device, so ``cuda`` means that one)."""

    spec: ModelSpec

    def __call__(self) -> DrivingModel:
        from alpamayo_ros.runtime.registry import load_model

        return load_model(self.spec)


def model_description(model: Any) -> dict[str, Any]:
    """The model fields of metrics.json that only the worker knows (name, version, untrained)."""
    info = model.info
    return {"name": info.name, "version": info.version, "untrained": info.untrained}


@dataclass(frozen=True)
class EvaluateBag:
    """Open-loop evaluation of one bag through the node's planning tick (``tools.evaluate.evaluate_bag``)."""

    entry: BagEntry
    params: NodeParams
    max_ticks: int = 0

    @property
    def key(self) -> str:
        return str(self.entry.path)

    def __call__(self, model: Any) -> dict[str, Any]:
        from alpamayo_ros.tools.evaluate import evaluate_bag

        ev = evaluate_bag(
            self.entry.path, model, params=self.params, max_ticks=self.max_ticks, report_ticks=0, progress=False
        )
        return {"evaluation": encode_evaluation(ev), "model": model_description(model)}
