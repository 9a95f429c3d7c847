"""launch/alpamayo.launch.py and launch/build_engines.launch.py, run the way `ros2 launch` runs them.

Static checks first (always run); then the launch files for real with the upstream launch / launch_ros sources
(test/nodes/conftest.py: skipped with one reason when ../shared/vendor/ros2-launch is absent): parameters reach the
node with their types, the parameter file applies under a namespace, autostart reaches active, a plan comes out of
a bag played through it, and Ctrl-C to the process group ends everything within seconds. The RViz config has its
own tests (test/tools/test_rviz_config.py).
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from alpamayo_ros.core.params import PARAM_SPECS, render_yaml

from support import REPO, stop_process, wait_until

LAUNCH = REPO / "launch" / "alpamayo.launch.py"
BUILD_LAUNCH = REPO / "launch" / "build_engines.launch.py"
ANCHOR_TOPIC = "/cameras/camera_front_wide_120fov/image_raw"
CTRL_C_LIMIT_S = 10.0  # measured ~2 s on a 2-core CPU machine; generous for a shared one


def test_launch_file_parses_and_declares_the_main_knobs() -> None:
    source = LAUNCH.read_text()
    ast.parse(source)
    for name in ("params_file", "use_sim_time", "rviz", "odometry_topic", "camera_topic_prefix", "namespace"):
        assert f'"{name}"' in source
    assert "for spec in PARAM_SPECS" in source, "every node parameter must be a launch argument"


def _build_arguments() -> dict[str, tuple[str, str]]:
    """build_engines.launch.py's ARGUMENTS table, read without importing launch."""
    for node in ast.parse(BUILD_LAUNCH.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ARGUMENTS" for t in node.targets):
            return dict(ast.literal_eval(node.value))
    raise AssertionError("build_engines.launch.py has no ARGUMENTS table")


def test_build_only_launch_passes_every_argument_to_the_cli() -> None:
    """Static: each launch argument maps onto a real `alpamayo-ros build-engines` option."""
    import argparse

    from alpamayo_ros.runtime.build_engines import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = {opt for action in parser._actions for opt in action.option_strings}
    flags = {"--" + name.replace("_", "-") for name in _build_arguments()} | {"--export-only"}
    assert flags <= options, flags - options
    source = BUILD_LAUNCH.read_text()
    assert '"build-engines"' in source and "OnProcessExit" in source and '"--export-only"' in source


# ------------------------------------------------------------------------------------------- launched for real
def _launch_arguments(ros2_launch: Any, launch_file: Path) -> set[str]:
    """The names of the arguments a launch file declares, loaded by launch itself (in the launch environment)."""
    probe = (
        "import sys; from launch.launch_description_sources import get_launch_description_from_python_launch_file;"
        "print(*(a.name for a in get_launch_description_from_python_launch_file(sys.argv[1]).get_launch_arguments()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(launch_file)],
        env=ros2_launch.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return set(done.stdout.split())


@pytest.mark.slow
def test_launch_descriptions_declare_every_parameter_and_build_argument(ros2_launch: Any) -> None:
    names = _launch_arguments(ros2_launch, LAUNCH)
    assert {s.name for s in PARAM_SPECS} <= names
    assert {"params_file", "use_sim_time", "rviz", "rviz_config", "rviz_fixed_frame", "namespace"} <= names
    assert _launch_arguments(ros2_launch, BUILD_LAUNCH) == {*_build_arguments(), "export_only"}


class Probe:
    """The test's own rclpy node: lifecycle state, parameters and plans of the launched node, over ROS."""

    def __init__(self, node_name: str) -> None:
        import rclpy
        from nav_msgs.msg import Path as PathMsg
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.fqn = node_name
        self.node = rclpy.create_node("alpamayo_launch_probe")
        self.paths: list[Any] = []
        self.node.create_subscription(
            PathMsg,
            f"{node_name}/output/path",
            self.paths.append,
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
        )
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def call(self, srv_type: Any, service: str, request: Any, timeout_s: float = 30.0) -> Any:
        client = self.node.create_client(srv_type, f"{self.fqn}/{service}")
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                return None
            future = client.call_async(request)
            return future.result() if wait_until(future.done, 15.0) else None
        finally:
            self.node.destroy_client(client)

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        got = self.call(GetState, "get_state", GetState.Request(), timeout_s=2.0)
        return "" if got is None else str(got.current_state.label)

    def parameters(self, names: list[str]) -> dict[str, Any]:
        """name -> (type name, value) as the node reports them (rcl_interfaces/ParameterValue)."""
        from rcl_interfaces.msg import ParameterType
        from rcl_interfaces.srv import GetParameters

        got = self.call(GetParameters, "get_parameters", GetParameters.Request(names=names))
        assert got is not None, f"{self.fqn}/get_parameters did not answer"
        fields = {
            ParameterType.PARAMETER_BOOL: ("bool", "bool_value"),
            ParameterType.PARAMETER_INTEGER: ("int", "integer_value"),
            ParameterType.PARAMETER_DOUBLE: ("double", "double_value"),
            ParameterType.PARAMETER_STRING: ("string", "string_value"),
            ParameterType.PARAMETER_DOUBLE_ARRAY: ("double[]", "double_array_value"),
        }
        out = {}
        for name, value in zip(names, got.values, strict=True):
            kind, field = fields.get(value.type, (f"type {value.type}", ""))
            raw = getattr(value, field) if field else None
            out[name] = (kind, list(raw) if kind == "double[]" else raw)
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture(scope="module")
def rclpy_context() -> Iterator[None]:
    rclpy = pytest.importorskip("rclpy")
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="module")
def short_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from alpamayo_ros.sim import generate
    from alpamayo_ros.tools.synth import write_scenario_bag

    out = tmp_path_factory.mktemp("launch_bag") / "bag"
    write_scenario_bag(generate("lead_vehicle_braking", 3, 3.0, 160, 90), out, progress=False)
    return out


def _launch(ros2_launch: Any, file_name: str, *arguments: str) -> subprocess.Popen[str]:
    """`ros2 launch alpamayo_ros FILE ...` in its own process group, as a terminal starts it."""
    return subprocess.Popen(
        ros2_launch.command(file_name, *arguments),
        env=ros2_launch.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _ctrl_c(proc: subprocess.Popen[str]) -> tuple[float, str]:
    """SIGINT to the whole process group (what Ctrl-C in a terminal does); returns (seconds to exit, output)."""
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=CTRL_C_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"launch still running {CTRL_C_LIMIT_S} s after Ctrl-C:\n{out[-4000:]}")
    return time.monotonic() - started, out


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _abort(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    return out[-6000:]


@contextmanager
def launched_node(ros2_launch: Any, node_name: str, *arguments: str) -> Iterator[Probe]:
    """alpamayo.launch.py with ``arguments``, until its node is active; afterwards Ctrl-C must end it all cleanly."""
    launch = _launch(ros2_launch, "alpamayo.launch.py", *arguments)
    probe = Probe(node_name)
    try:
        assert wait_until(lambda: probe.state() == "active", 90.0), "node never active:\n" + _abort(launch)
        yield probe
    except BaseException:
        print(_abort(launch))
        raise
    finally:
        probe.close()
    seconds, out = _ctrl_c(launch)
    assert launch.returncode == 0, out[-4000:]
    assert not _group_alive(launch.pid), "a launched process outlived the launch"
    print(f"Ctrl-C to exit: {seconds:.1f} s")


@pytest.mark.slow
@pytest.mark.ros
def test_alpamayo_launch_types_autostart_plan_and_ctrl_c(
    ros2_launch: Any, rclpy_context: None, short_bag: Path, ros_env: dict[str, str]
) -> None:
    with launched_node(
        ros2_launch,
        "/alpamayo_node",
        "model.backend:=test_policy",
        "use_sim_time:=true",
        "camera_topic_prefix:=/cameras",
        "odometry_topic:=/odom",
        "planning_rate_hz:=5.0",
        "model.max_reasoning_tokens:=16",
        "publish_all_samples:=true",
        "overlay.mount_xyz_m:=[1.6, 0.0, 1.3]",
    ) as probe:
        names = [
            "planning_rate_hz",
            "model.max_reasoning_tokens",
            "publish_all_samples",
            "overlay.mount_xyz_m",
            "model.backend",
            "use_sim_time",
            "cameras.camera_front_wide_120fov.topic",
            "sync.tolerance_sec",
        ]
        assert probe.parameters(names) == {
            "planning_rate_hz": ("double", 5.0),
            "model.max_reasoning_tokens": ("int", 16),
            "publish_all_samples": ("bool", True),
            "overlay.mount_xyz_m": ("double[]", [1.6, 0.0, 1.3]),
            "model.backend": ("string", "test_policy"),
            "use_sim_time": ("bool", True),
            "cameras.camera_front_wide_120fov.topic": ("string", ANCHOR_TOPIC),
            "sync.tolerance_sec": ("double", 0.05),  # not given: the package's parameter file
        }
        player = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "alpamayo-ros"), "play", str(short_bag), "--clock", "100",
                "--wait-for-subscribers", ANCHOR_TOPIC, "/odom", "--quiet",
            ],
            env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert wait_until(lambda: len(probe.paths) > 0, 60.0), "no plan; player:\n" + stop_process(player)
        finally:
            stop_process(player)
        plan = probe.paths[0]
        assert plan.header.frame_id == "base_link" and len(plan.poses) == 64


@pytest.mark.slow
@pytest.mark.ros
def test_namespace_keeps_the_parameter_file(ros2_launch: Any, rclpy_context: None, tmp_path: Path) -> None:
    """namespace:=veh1 with a parameter file made by the package's generator: its values reach /veh1/alpamayo_node."""
    document = yaml.safe_load(render_yaml())
    (key,) = document
    document[key]["ros__parameters"]["planning_rate_hz"] = 4.0
    document[key]["ros__parameters"]["model"]["backend"] = "test_policy"
    params = tmp_path / "veh1.yaml"
    params.write_text(yaml.safe_dump(document))
    with launched_node(ros2_launch, "/veh1/alpamayo_node", "namespace:=veh1", f"params_file:={params}") as probe:
        got = probe.parameters(["planning_rate_hz", "model.backend"])
        assert got == {"planning_rate_hz": ("double", 4.0), "model.backend": ("string", "test_policy")}


@pytest.mark.slow
def test_build_engines_launch_fails_visibly(ros2_launch: Any, tmp_path: Path) -> None:
    """A failed build fails `ros2 launch` (exit code, and the line naming the build's code): scripts see it."""
    missing = tmp_path / "no_checkpoint"
    launch = _launch(ros2_launch, "build_engines.launch.py", f"model:={missing}", f"out:={tmp_path / 'engines'}")
    try:
        out, _ = launch.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("build_engines.launch.py did not finish:\n" + _abort(launch))
    assert launch.returncode != 0, out[-4000:]
    assert "alpamayo-ros build-engines exited with code 1" in out, out[-4000:]
    assert not _group_alive(launch.pid)


@pytest.mark.slow
def test_build_engines_launch_exports_and_exits_zero(ros2_launch: Any, tmp_path: Path) -> None:
    """export_only:=true on the tiny preset: the ONNX exports and manifest appear, the launch exits 0 by itself."""
    out_dir = tmp_path / "engines"
    launch = _launch(
        ros2_launch,
        "build_engines.launch.py",
        "model:=tiny",
        f"out:={out_dir}",
        "export_only:=true",
        "camera_size:=90x160",
    )
    try:
        out, _ = launch.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("build_engines.launch.py did not finish:\n" + _abort(launch))
    assert launch.returncode == 0, out[-4000:]
    assert (out_dir / "export_manifest.json").is_file() and list(out_dir.glob("*.onnx")), out[-4000:]
