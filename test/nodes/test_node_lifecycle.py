"""alpamayo_node lifecycle over the real lifecycle services (autostart off, wall clock), and a model that fails
to load: configure fails, diagnostics say ERROR with the reason, no silent fallback to another backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from node_feeder import NODE, Feeder  # noqa: E402

from support import start_process, stop_process, wait_until  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def managed(ros_env: dict[str, str], python_exe: str) -> Iterator[tuple[Feeder, Any]]:
    rclpy.init()
    fd = Feeder(use_sim_time=False)
    proc = start_process(
        [
            python_exe, "-m", "alpamayo_ros.cli", "node", "--ros-args",
            "-p", "autostart:=false",
            "-p", "model.backend:=test_policy",
            "-p", "diagnostics.period_sec:=0.25",
        ],
        ros_env,
    )  # fmt: skip
    try:
        assert wait_until(lambda: fd.status("model") is not None, 30.0), "no diagnostics:\n" + stop_process(proc)
        fd.start_feeding()
        yield fd, proc
    finally:
        fd.close()
        out = stop_process(proc)
        rclpy.try_shutdown()
        print(out[-4000:])
    assert proc.returncode == 0, out[-4000:]


def _call(fd: Feeder, srv_type: Any, name: str, request: Any) -> Any:
    client = fd.node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=10.0), f"service {name} not available"
        future = client.call_async(request)
        assert wait_until(future.done, 60.0), f"{name} did not answer"  # a torch import under load takes a while
        return future.result()
    finally:
        fd.node.destroy_client(client)


def _state(fd: Feeder) -> str:
    from lifecycle_msgs.srv import GetState

    return str(_call(fd, GetState, f"{NODE}/get_state", GetState.Request()).current_state.label)


def _transition(fd: Feeder, transition_id: int) -> bool:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    request = ChangeState.Request(transition=Transition(id=transition_id))
    return bool(_call(fd, ChangeState, f"{NODE}/change_state", request).success)


def _set(fd: Feeder, **values: Any) -> None:
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    params = [Parameter(k.replace("__", "."), value=v).to_parameter_msg() for k, v in values.items()]
    result = _call(fd, SetParameters, f"{NODE}/set_parameters", SetParameters.Request(parameters=params))
    assert all(r.successful for r in result.results), [r.reason for r in result.results]


def test_full_lifecycle(managed: tuple[Feeder, Any]) -> None:
    from lifecycle_msgs.msg import Transition

    fd, _ = managed
    assert _state(fd) == "unconfigured"
    assert fd.count_paths() == 0
    assert _transition(fd, Transition.TRANSITION_CONFIGURE)
    assert _state(fd) == "inactive"
    assert wait_until(lambda: (fd.status("model") or (0, ""))[1] == "ready", 5.0)
    assert _transition(fd, Transition.TRANSITION_ACTIVATE)
    assert _state(fd) == "active"
    assert wait_until(lambda: fd.count_paths() >= 3, 15.0), fd.status("planning")
    with fd.lock:
        path = fd.paths[-1]
    assert len(path.poses) == 64
    assert _transition(fd, Transition.TRANSITION_DEACTIVATE)
    assert _state(fd) == "inactive"
    assert wait_until(lambda: "not active" in (fd.status("planning") or (0, ""))[1], 5.0)
    n = fd.count_paths()
    # inputs keep arriving (odometry count grows by ~25 in 0.5 s) but nothing is planned while inactive
    received = int(fd.status("odometry")[2]["received"])  # type: ignore[index]
    assert wait_until(lambda: int(fd.status("odometry")[2]["received"]) > received + 25, 5.0)  # type: ignore[index]
    assert fd.count_paths() == n
    assert _transition(fd, Transition.TRANSITION_CLEANUP)
    assert _state(fd) == "unconfigured"
    assert wait_until(lambda: (fd.status("model") or (0, ""))[1] == "unconfigured", 5.0)


def test_model_load_failure_is_an_error_not_a_fallback(managed: tuple[Feeder, Any]) -> None:
    from lifecycle_msgs.msg import Transition

    fd, _ = managed
    assert _state(fd) == "unconfigured"
    _set(fd, model__backend="torch", model__model_path="/nonexistent/alpamayo_checkpoint")
    assert not _transition(fd, Transition.TRANSITION_CONFIGURE)
    assert _state(fd) == "unconfigured"
    assert wait_until(lambda: (fd.status("model") or (0, ""))[0] == 2, 5.0), fd.status("model")
    _level, message, values = fd.status("model")  # type: ignore[misc]
    assert message.startswith("error: model load failed (torch, /nonexistent/alpamayo_checkpoint)")
    assert values["backend"] == "torch"
    # back to a loadable model: configure works again
    _set(fd, model__backend="test_policy", model__model_path="default")
    assert _transition(fd, Transition.TRANSITION_CONFIGURE)
    assert wait_until(lambda: (fd.status("model") or (0, ""))[1] == "ready", 5.0)


def test_invalid_topic_fails_configure_with_the_reason(managed: tuple[Feeder, Any]) -> None:
    from lifecycle_msgs.msg import Transition

    fd, _ = managed
    if _state(fd) != "unconfigured":
        assert _transition(fd, Transition.TRANSITION_CLEANUP)
    _set(fd, model__backend="test_policy", model__model_path="default")
    _set(fd, cameras__camera_rear_tele_30fov__topic="bad topic name")
    assert not _transition(fd, Transition.TRANSITION_CONFIGURE)
    assert _state(fd) == "unconfigured"
    assert wait_until(lambda: "could not create publishers/subscriptions" in (fd.status("model") or (0, ""))[1], 5.0)
    assert "bad topic name" in fd.status("model")[1]  # type: ignore[index]
    _set(fd, cameras__camera_rear_tele_30fov__topic="~/input/camera_rear_tele_30fov/image")
    assert _transition(fd, Transition.TRANSITION_CONFIGURE)
    assert wait_until(lambda: (fd.status("model") or (0, ""))[1] == "ready", 5.0)


def test_shutdown_transition_ends_the_process(ros_env: dict[str, str], python_exe: str) -> None:
    """After the lifecycle shutdown transition the process exits 0, so a supervisor or launch sees the node is gone."""
    from lifecycle_msgs.msg import Transition

    proc = start_process(
        [python_exe, "-m", "alpamayo_ros.cli", "node", "--ros-args", "-p", "model.backend:=test_policy",
         "-r", "__node:=alpamayo_node_shutdown"],
        ros_env,
    )  # fmt: skip
    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node("alpamayo_shutdown_caller")
    try:
        from lifecycle_msgs.srv import ChangeState

        client = node.create_client(ChangeState, "/alpamayo_node_shutdown/change_state")
        assert client.wait_for_service(timeout_sec=30.0), "node did not come up:\n" + stop_process(proc)
        request = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVE_SHUTDOWN))
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=15.0)
        assert future.done() and future.result().success, "shutdown transition refused"
        assert proc.wait(timeout=10.0) == 0, stop_process(proc)
    finally:
        node.destroy_node()
        out = stop_process(proc)
    assert "shut down" in out
