"""The Ray executor on a real local Ray (2 CPUs, loopback only): equal per-bag numbers to the serial executor, and
faults (a worker that dies mid-bag, a bag over its time limit, an unreadable bag) retried, then reported."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loads_together import LoadsTogether

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.tools.fleet.executor import Outcome, SerialExecutor, Status
from alpamayo_ros.tools.fleet.inputs import BagEntry
from alpamayo_ros.tools.fleet.progress import Progress
from alpamayo_ros.tools.fleet.units import EvaluateBag, ModelLoader

ray = pytest.importorskip("ray", reason="Ray is not installed (requirements/fleet.txt)")

pytestmark = pytest.mark.slow

TEST_POLICY = ModelLoader(ModelSpec(backend="test_policy"))


def _listening_addresses(pids: set[int]) -> set[str]:
    """Local addresses (hex, as /proc/net lists them) of the TCP sockets these processes listen on."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            links = [str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue  # a process that ended meanwhile
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # state LISTEN
                found.add(fields[1].rsplit(":", 1)[0])
    return found


def _descendants() -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    from alpamayo_ros.tools.fleet.ray_executor import start_local_ray

    start_local_ray(2)
    # worker processes registered with the units pickled by value (they cannot import this test module)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(sys.modules["loads_together"])
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def two_bags(tiny_bag: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from alpamayo_ros.sim import generate
    from alpamayo_ros.tools.synth import write_scenario_bag

    other = tmp_path_factory.mktemp("ray_bags") / "pedestrian"
    write_scenario_bag(generate("pedestrian_crossing", 5, 3.5, 160, 90), other, progress=False)
    return [tiny_bag, other]


def _run(executor: Any, units: list[Any], loader: Any = TEST_POLICY) -> dict[str, Outcome]:
    return {o.key: o for o in executor.run(units, loader, Progress(len(units), enabled=False))}


def _untimed(result: dict[str, Any]) -> dict[str, Any]:
    ev = result["evaluation"]
    ticks = [{k: v for k, v in t.items() if k != "latency_ms"} for t in ev["ticks"]]
    return {**{k: v for k, v in ev.items() if k != "bag"}, "ticks": ticks}


def test_local_ray_listens_on_loopback_only(local_ray: None) -> None:
    addresses = _listening_addresses(_descendants())
    assert addresses, "the walk found no listening socket of the local Ray"
    loopback = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
    assert addresses <= loopback, f"listening beyond 127.0.0.1: {addresses}"


def test_ray_gives_the_serial_per_bag_numbers(local_ray: None, two_bags: list[Path], tmp_path: Path) -> None:
    from alpamayo_ros.tools.fleet.ray_executor import RayExecutor

    units = [EvaluateBag(BagEntry(b), NodeParams()) for b in two_bags]
    serial = _run(SerialExecutor(), units)
    on_ray = _run(RayExecutor(workers=2), units, LoadsTogether(TEST_POLICY, tmp_path / "meeting"))
    assert set(on_ray) == set(serial) == {str(b) for b in two_bags}
    for key, outcome in on_ray.items():
        assert outcome.status is Status.OK and outcome.attempts == 1
        assert outcome.worker["pid"] != os.getpid()  # ran in a Ray worker, not here
        assert len(outcome.result["evaluation"]["ticks"]) == 20  # type: ignore[index]
        assert _untimed(outcome.result) == _untimed(serial[key].result)  # type: ignore[arg-type]
    assert len({o.worker["pid"] for o in on_ray.values()}) == 2  # both workers took a bag


class _FaultyBag(EvaluateBag):
    """Faults chosen by the bag's name: 'crash' kills the worker mid-bag once, 'slow' hangs once, else normal.

    'Once' is remembered in marker files beside the bag, so the retry (on a fresh worker) goes through.
    """

    def __call__(self, model: Any) -> dict[str, Any]:
        name = self.entry.path.name
        marker = self.entry.path.parent / f"{name}.attempted"
        first = not marker.exists()
        marker.touch()
        if first and "slow" in name:
            time.sleep(600)
        if first and "crash" in name:
            model = _DiesOnFifthTick(model)
        return super().__call__(model)


class _DiesOnFifthTick:
    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    @property
    def info(self) -> Any:
        return self.inner.info

    def predict(self, sample: Any) -> Any:
        self.calls += 1
        if self.calls == 5:
            os._exit(3)  # the worker process dies in the middle of the bag
        return self.inner.predict(sample)

    def close(self) -> None:
        self.inner.close()


def test_faults_are_retried_then_reported_never_dropped(local_ray: None, tiny_bag: Path, tmp_path: Path) -> None:
    from alpamayo_ros.tools.fleet.ray_executor import RayExecutor

    bags = {name: tmp_path / name for name in ("fine", "crash_mid_bag", "slow_once", "unreadable")}
    for name in ("fine", "crash_mid_bag", "slow_once"):
        shutil.copytree(tiny_bag, bags[name])
    bags["unreadable"].mkdir()
    (bags["unreadable"] / "metadata.yaml").write_text("not: [a rosbag2 bag\n")
    units = [_FaultyBag(BagEntry(b), NodeParams()) for b in bags.values()]
    # the limit is far above a healthy bag's few seconds, so only the hang reaches it, even on a crowded runner
    executor = RayExecutor(workers=2, retries=1, task_timeout_sec=15.0)
    started = time.monotonic()
    got = _run(executor, units)
    assert time.monotonic() - started < 120
    assert set(got) == {str(b) for b in bags.values()}  # every bag has an outcome

    fine, crash, slow, bad = (got[str(bags[n])] for n in bags)
    assert (fine.status, fine.attempts, fine.errors) == (Status.OK, 1, [])
    assert crash.status is Status.OK and crash.attempts == 2
    assert crash.errors[0].startswith("worker died")
    assert slow.status is Status.OK and slow.attempts == 2
    assert slow.errors == ["exceeded the task time limit of 15 s"]
    assert bad.status is Status.FAILED and bad.attempts == 2 and len(bad.errors) == 2
    assert "unreadable" in bad.reason or "metadata" in bad.reason, bad.reason
    # the retried bags give the same numbers as the bag that ran once
    assert _untimed(crash.result) == _untimed(slow.result) == _untimed(fine.result)  # type: ignore[arg-type]
    assert executor.started_workers == 4  # two replacements: the dead worker and the one that hung


def test_workers_that_cannot_start_stop_the_run_with_one_reason(local_ray: None, tiny_bag: Path) -> None:
    from alpamayo_ros.tools.fleet.executor import WorkerStartError
    from alpamayo_ros.tools.fleet.ray_executor import RayExecutor

    units = [EvaluateBag(BagEntry(tiny_bag), NodeParams())]
    progress = Progress(1, enabled=False)
    with pytest.raises(WorkerStartError, match="needs 1 CPU and 1 GPU; the cluster has 2 CPUs and 0 GPUs"):
        list(RayExecutor(workers=1, gpus_per_worker=1.0).run(units, TEST_POLICY, progress))
    missing = ModelLoader(ModelSpec(backend="torch", model_path="/nonexistent/checkpoint"))
    with pytest.raises(WorkerStartError, match=r"^a worker could not load the model: .*/nonexistent/checkpoint"):
        list(RayExecutor(workers=1).run(units, missing, progress))
