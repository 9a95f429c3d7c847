"""`alpamayo-ros sim --executor ray` on a real local Ray (2 CPUs, loopback only): the same outputs as a single-machine
run, in process and with two concurrent rollouts over DDS (each worker in a ROS domain of its own); a worker that
dies mid-rollout is retried on a fresh one and reported."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loads_together import LoadsTogether
from sim_runs import SMALL, TEST_POLICY_PARAMS, figures, sim, untimed_junit, world_tracks

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.tools import sim as sim_tool
from alpamayo_ros.tools.fleet import sim_command
from alpamayo_ros.tools.fleet.executor import Outcome, Status
from alpamayo_ros.tools.fleet.progress import Progress
from alpamayo_ros.tools.fleet.results import read_rows
from alpamayo_ros.tools.fleet.rollout_results import RolloutResults
from alpamayo_ros.tools.fleet.rollouts import RolloutSet, SimWorker, SimWorkerLoader
from alpamayo_ros.tools.fleet.ros_domains import FIRST_DOMAIN, LAST_DOMAIN, own_domain

ray = pytest.importorskip("ray", reason="Ray is not installed (requirements/fleet.txt)")

pytestmark = pytest.mark.slow

NODE_ONLY = ["--suite", "smoke", "--driver", "node", "--no-progress"]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module; the command joins it instead of starting its own."""
    from alpamayo_ros.tools.fleet.ray_executor import start_local_ray

    start_local_ray(2)
    # the faulty unit below and the loader that makes workers start together travel by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(sys.modules["loads_together"])
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def single_machine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the test policy's parameter file, the smoke suite's node rollouts run in this process without the fleet)."""
    root = tmp_path_factory.mktemp("sim_ray")
    params_file = root / "test_policy.yaml"
    params_file.write_text(TEST_POLICY_PARAMS)
    assert sim(params_file, root / "single", *NODE_ONLY, "--transport", "inprocess") == 0
    return params_file, root / "single"


@pytest.mark.parametrize("transport", ["inprocess", pytest.param("dds", marks=pytest.mark.ros)])
def test_concurrent_rollouts_on_ray_give_the_single_machine_outputs(
    local_ray: None, single_machine: tuple[Path, Path], tmp_path: Path, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers, one rollout each, side by side. Over DDS both rollouts start at the same stamps: a worker that
    heard the other's node would drive differently."""
    params_file, single = single_machine
    meeting = tmp_path.parent / f"{tmp_path.name}_meeting"  # beside --out, not in it

    def loads_together(*args: Any, **kwargs: Any) -> LoadsTogether:
        return LoadsTogether(SimWorkerLoader(*args, **kwargs), meeting)

    monkeypatch.setattr(sim_command, "SimWorkerLoader", loads_together)
    argv = [*NODE_ONLY, "--transport", transport, "--executor", "ray", "--workers", "2"]
    assert sim(params_file, tmp_path, *argv) == 0
    assert figures(tmp_path) == figures(single)
    assert untimed_junit(tmp_path) == untimed_junit(single)
    assert world_tracks(tmp_path) == world_tracks(single) != {}
    rows = read_rows(tmp_path)
    assert all(r["status"] == "ok" for r in rows)
    workers = [r["worker"] for r in rows]
    assert len({w["pid"] for w in workers} - {os.getpid()}) == 2  # in two Ray workers, not here
    domains = {w.get("ros_domain_id") for w in workers}
    if transport == "inprocess":
        assert domains == {None}  # no DDS, no domain taken
        return
    assert len(domains) == 2 and all(FIRST_DOMAIN <= d <= LAST_DOMAIN for d in domains if d is not None)
    assert own_domain() not in domains
    assert len(list((tmp_path / "node").glob("*_domain*/node.log"))) == 2  # each worker started its own node


def _args(params_file: Path, out: Path) -> argparse.Namespace:
    """The sim's parsed command line for a direct executor run (in process, the small settings of sim_runs)."""
    parser = argparse.ArgumentParser()
    sim_tool.add_arguments(parser)
    argv = ["--params-file", str(params_file), "--out", str(out), "--transport", "inprocess", *SMALL]
    return parser.parse_args(argv)


class _DiesMidRollout(RolloutSet):
    """The worker process dies at the 20th tick of its first attempt (a marker file remembers the attempt)."""

    def __call__(self, worker: SimWorker) -> dict[str, Any]:
        marker = self.args.out / f"{self.scenario}.attempted"
        first = not marker.exists()
        marker.touch()
        if first:
            transport, _ = worker.node()
            dying = _DyingNode(transport)
            worker.node = lambda: (dying, "")  # type: ignore[method-assign]
        return super().__call__(worker)


class _DyingNode:
    def __init__(self, inner: Any) -> None:
        self.inner, self.ticks = inner, 0

    def answer(self, *args: Any, **kwargs: Any) -> Any:
        self.ticks += 1
        if self.ticks == 20:
            os._exit(3)
        return self.inner.answer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_worker_that_dies_mid_rollout_is_retried_and_reported(
    local_ray: None, single_machine: tuple[Path, Path], tmp_path: Path
) -> None:
    from alpamayo_ros.tools.fleet.ray_executor import RayExecutor

    params_file, single = single_machine
    args = _args(params_file, tmp_path)
    units = [_DiesMidRollout("lead_vehicle_braking", 1000, ("node",), args)]
    loader = SimWorkerLoader(NodeParams(model=ModelSpec(backend="test_policy")), args, needs_node=True)
    executor = RayExecutor(workers=1, retries=1)
    results = RolloutResults(tmp_path, list(units))
    outcomes: list[Outcome] = []
    for outcome in executor.run(units, loader, Progress(1, enabled=False)):
        outcomes.append(outcome)
        results.add(outcome)
    (outcome,) = outcomes
    assert outcome.status is Status.OK and outcome.attempts == 2
    assert outcome.errors[0].startswith("worker died"), outcome.errors
    assert executor.started_workers == 2  # the dead worker was replaced
    summary = results.finish({"executor": "ray"})
    (row,) = read_rows(tmp_path)
    assert (row["status"], row["attempts"], row["errors"]) == ("ok", 2, outcome.errors)
    # the retried rollout is the one a single-machine run drives
    retried = json.loads((tmp_path / "metrics.json").read_text())["rollouts"][0]["metrics"]
    expected = json.loads((single / "metrics.json").read_text())["rollouts"][0]["metrics"]
    assert retried["progress_m"] == expected["progress_m"] and retried["ticks"] == expected["ticks"]
    assert summary["fleet"]["rollouts_run"] == 1 and summary["fleet"]["rollouts_failed"] == 0
