"""alpamayo_node: seven synchronized cameras + odometry in; 64-pose Path, Chain-of-Causation and markers out.

A managed (lifecycle) node and nothing but ROS wiring; the logic lives in ``alpamayo_ros.core``:

- parameters are declared from ``core.params`` (derived from each module's config) and validated as a transaction;
- subscriptions hand every message to ``core.intake.InputIntake`` (buffering, counting; nothing is decoded);
- a planning timer (steady clock) calls ``core.planning.select_job``; a job goes to ONE worker thread, which runs
  ``core.planning.plan_once`` and builds the messages (``nodes.plan_messages``); a guard condition wakes the
  executor, which publishes them (or records why not);
- ``/diagnostics`` is derived in ``core.diagnostics`` from the intake's and the planner's counters.

Threading: a single-threaded executor owns all node state; the worker touches only the job it is given.
Topics: see the README (relative names resolve under the node, e.g. /alpamayo_node/output/path; all remappable).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher
from rclpy.lifecycle.node import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float64
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.core import params as P
from alpamayo_ros.core.decisions import Agreement
from alpamayo_ros.core.diagnostics import (
    Lifecycle,
    ModelState,
    PlanningStats,
    Status,
    Throttle,
    camera_status,
    model_status,
    odometry_status,
    planning_status,
)
from alpamayo_ros.core.intake import InputIntake, Notice
from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.planning import Skip, select_job, sync_config, synthetic_input
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.types import DrivingModel
from alpamayo_ros.msg import ChainOfCausation, StageLatency
from alpamayo_ros.nodes.plan_messages import WorkerResult, plan_and_build
from alpamayo_ros.rosenv import apply_ros_defaults

__all__ = ["AlpamayoNode", "add_arguments", "main", "run"]

ModelLoader = Callable[[ModelSpec], DrivingModel]
DEBUG_TIMES = ("processing", "select", "images", "inference", "build")  # ~/debug/<stage>_time_ms


def _load_model(spec: ModelSpec) -> DrivingModel:
    from alpamayo_ros.runtime.registry import load_model  # torch is imported only when a model is loaded

    return load_model(spec)


class _RosLogHandler(logging.Handler):
    """Forwards the package's Python logging (model load progress, provenance) to the node's ROS logger."""

    def __init__(self, ros_logger: Any) -> None:
        super().__init__(logging.INFO)
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        text = f"[{record.name}] {record.getMessage()}"
        level = "error" if record.levelno >= logging.ERROR else "warning" if record.levelno >= logging.WARNING else ""
        getattr(self._ros_logger, level or "info")(text)


def _qos(reliability: str, depth: int) -> QoSProfile:
    rel = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel)


class AlpamayoNode(LifecycleNode):  # type: ignore[misc]  # rclpy is untyped for mypy here
    """The planning node. Transition callbacks appear in lifecycle order; then parameters, inputs, tick, outputs.

    ``load_model`` turns the configured ``model.*`` spec into a model (default: ``runtime.registry.load_model``);
    tests pass their own to inject a failing model.
    """

    def __init__(self, node_name: str = P.NODE_NAME, *, load_model: ModelLoader = _load_model, **kwargs: Any) -> None:
        self.model: DrivingModel | None = None
        self.model_state = ModelState.UNCONFIGURED
        self.model_error = ""
        self.lifecycle = Lifecycle.UNCONFIGURED
        self._load_model = load_model
        self._intake = InputIntake()
        self._plan = PlanningStats()
        self._subs: list[Subscription[Any]] = []
        self._pubs: dict[str, LifecyclePublisher[Any]] = {}
        self._plan_timer: Timer | None = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._future: concurrent.futures.Future[WorkerResult] | None = None
        self._camera_info: CameraInfo | None = None
        self._throttle = Throttle()
        super().__init__(node_name, **kwargs)
        for spec in P.PARAM_SPECS:
            self.declare_parameter(spec.name, spec.default, self._descriptor(spec))
        values, problems = self._read_parameters()
        self.params = P.from_values(values) if not problems else P.NodeParams()
        problems = problems or P.validate(self.params)
        if problems:  # diagnostics start with defaults; configure re-reads and fails with the reasons
            self.params = P.NodeParams()
            self.get_logger().error("invalid parameters: " + "; ".join(problems))
        self._log_handler = _RosLogHandler(self.get_logger())
        package_logger = logging.getLogger("alpamayo_ros")
        package_logger.addHandler(self._log_handler)
        if package_logger.level == logging.NOTSET:
            package_logger.setLevel(logging.INFO)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._result_guard = self.create_guard_condition(self._on_result_ready)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self._diagnostics_timer()

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, load the model (progress logged), warm it up, create publishers and subscriptions."""
        values, problems = self._read_parameters()
        if not problems:
            self.params = P.from_values(values)
            problems = P.validate(self.params)
        if problems:
            return self._fail_configure("invalid parameters: " + "; ".join(problems))
        spec = self.params.model
        self.model_state, self.model_error = ModelState.LOADING, ""
        self._publish_diagnostics()
        self.get_logger().info(
            f"loading model: backend={spec.backend} model_path={spec.model_path} device={spec.device}"
        )
        started = time.perf_counter()
        try:
            model = self._load_model(spec)
        except Exception as exc:  # any loader failure is reported, never silently replaced by another backend
            self.get_logger().error(f"model load failed: {type(exc).__name__}: {exc}")
            return self._fail_configure(f"model load failed ({spec.backend}, {spec.model_path}): {exc}")
        info = model.info
        self.get_logger().info(
            f"model loaded in {time.perf_counter() - started:.1f} s: {info.name} {info.version}"
            f"{' (UNTRAINED)' if info.untrained else ''}; cameras {', '.join(info.cameras)}; "
            f"frames at {info.frame_offsets_sec} s; image size {info.image_size_hw or 'native'}"
        )
        try:
            self._intake.configure(sync_config(self.params.sync, info), self.params.ego)
        except ValueError as exc:
            model.close()
            return self._fail_configure(f"synchronisation settings do not fit the model: {exc}")
        if spec.warmup:
            warm_started = time.perf_counter()
            try:
                model.predict(synthetic_input(info.image_size_hw, info.cameras, info.frame_offsets_sec))
            except Exception as exc:  # a model that cannot run one inference is not ready
                model.close()
                return self._fail_configure(f"warm-up inference failed: {type(exc).__name__}: {exc}")
            self.get_logger().info(f"warm-up inference done in {(time.perf_counter() - warm_started) * 1e3:.0f} ms")
        self.model, self.model_state = model, ModelState.READY
        try:
            self._create_outputs()
            self._create_inputs()
        except Exception as exc:  # rclpy raises on invalid topic names; without this the reason is swallowed
            self.release()
            return self._fail_configure(f"could not create publishers/subscriptions: {type(exc).__name__}: {exc}")
        self.destroy_timer(self._diag_timer)  # diagnostics.period_sec applies at configure
        self._diag_timer = self._diagnostics_timer()
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="alpamayo_infer")
        self.lifecycle = Lifecycle.INACTIVE
        self.get_logger().info("configured")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        rate = self.params.planning.planning_rate_hz
        self._plan_timer = self.create_timer(1.0 / rate, self._on_tick, clock=self._steady)
        self.lifecycle = Lifecycle.ACTIVE
        self.get_logger().info(f"active: planning at {rate:g} Hz")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_planning()
        self._intake.generation += 1  # an inference still running belongs to the old activation: never published
        self.lifecycle = Lifecycle.INACTIVE
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.lifecycle = Lifecycle.UNCONFIGURED
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything; the process then exits (0), so a supervisor or launch sees the node is gone."""
        self.release()
        self.lifecycle = Lifecycle.FINALIZED
        self.get_logger().info("shut down")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.model_state = ModelState.ERROR
        self.lifecycle = Lifecycle.UNCONFIGURED
        return TransitionCallbackReturn.SUCCESS

    def _fail_configure(self, reason: str) -> TransitionCallbackReturn:
        self.model_state, self.model_error = ModelState.ERROR, reason
        self.get_logger().error(f"configure failed: {reason}")
        self._publish_diagnostics()
        return TransitionCallbackReturn.FAILURE

    def _stop_planning(self) -> None:
        if self._plan_timer is not None:
            self.destroy_timer(self._plan_timer)
            self._plan_timer = None

    def release(self) -> None:
        """Stop planning, wait for the worker, drop I/O, free the model (cleanup, shutdown, process exit)."""
        self._stop_planning()
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
        self._future = None
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs.clear()
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs.clear()
        if self.model is not None:
            self.model.close()
            self.model = None
        self._intake.release()
        if self.model_state is not ModelState.ERROR:
            self.model_state = ModelState.UNCONFIGURED

    # --- parameters --------------------------------------------------------------------------------------------

    @staticmethod
    def _descriptor(spec: P.ParamSpec) -> ParameterDescriptor:
        return ParameterDescriptor(
            name=spec.name,
            description=f"{spec.description} (applies: {spec.when})",
            additional_constraints=spec.info.range_text(),
            # rclpy would raise on "tokens:=64.0" or "[1, 0, 1]" for a double array and kill the node at start;
            # types are checked by P.type_problem instead, so a bad one is rejected with a reason
            dynamic_typing=True,
        )

    def _read_parameters(self, changes: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
        """Every declared value (with ``changes`` applied), and the type problems among them."""
        values = {spec.name: self.get_parameter(spec.name).value for spec in P.PARAM_SPECS}
        values.update(changes or {})
        problems = [p for name, v in values.items() if (p := P.type_problem(P.SPECS_BY_NAME[name], v)) is not None]
        return {k: v for k, v in values.items() if P.type_problem(P.SPECS_BY_NAME[k], v) is None}, problems

    def _on_set_parameters(self, changes: list[Parameter[Any]]) -> SetParametersResult:
        """Accept a change only if every parameter the next configure will read stays valid together; apply the
        live ones now, keep the configure-time ones for the next configure."""
        ours = {p.name: p.value for p in changes if p.name in P.SPECS_BY_NAME}
        if not ours:
            return SetParametersResult(successful=True)
        values, problems = self._read_parameters(ours)
        if not problems:
            problems = P.validate(P.from_values(values))
        if problems:
            self.get_logger().warning("rejected parameter change: " + "; ".join(problems))
            return SetParametersResult(successful=False, reason="; ".join(problems))
        live = {k: v for k, v in ours.items() if P.SPECS_BY_NAME[k].when == "live"}
        if self.lifecycle is Lifecycle.UNCONFIGURED:
            self.params = P.from_values(values)
        else:
            # The running configuration keeps its configure-time values: a frame_id or topic changing under a live
            # model would mislabel plans. They apply at the next configure (which re-reads every parameter).
            later = sorted(set(ours) - set(live))
            if later:
                self.get_logger().info(f"{', '.join(later)} will apply at the next configure")
            self.params = P.replace(self.params, live)
        return SetParametersResult(successful=True)

    # --- inputs ------------------------------------------------------------------------------------------------

    def _create_inputs(self) -> None:
        intake = self._intake
        for cam in self.params.cameras:
            qos = _qos(cam.reliability, 5)
            if cam.message_type == "compressed":
                handler = lambda m, c=cam.name: self._log(intake.add_compressed(c, m))  # noqa: E731
                self._subs.append(self.create_subscription(CompressedImage, cam.topic, handler, qos))
            else:
                handler = lambda m, c=cam.name: self._log(intake.add_image(c, m))  # noqa: E731
                self._subs.append(self.create_subscription(Image, cam.topic, handler, qos))
        odom = lambda m: self._log(intake.add_odometry(m))  # noqa: E731
        self._subs.append(self.create_subscription(Odometry, "~/input/odometry", odom, _qos("best_effort", 50)))
        if self.params.overlay.enabled:
            self._subs.append(
                self.create_subscription(
                    CameraInfo, self.params.overlay.camera_info_topic, self._on_camera_info, _qos("best_effort", 2)
                )
            )

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    # --- planning tick (executor thread) -----------------------------------------------------------------------

    def _on_tick(self) -> None:
        """One job per tick at most, to the worker; ``core.planning.select_job`` holds the checklist."""
        if self.model is None or self._intake.sync is None or self._worker is None:
            return
        if self._future is not None:
            self._plan.ticks += 1
            self._plan.skipped_busy += 1
            return
        prm = self.params
        outcome = select_job(
            self._intake,
            self.get_clock().now().nanoseconds,
            self._plan,
            planning=prm.planning,
            ego=prm.ego,
            backwards_jump_sec=prm.sync.backwards_jump_sec,
            extra_camera=prm.overlay.camera if prm.overlay.enabled else None,
        )
        if isinstance(outcome, Skip):
            if outcome.report:
                self._not_planned(outcome.kind.value, outcome.reason)
            return
        if outcome.sample.filled:
            self._warn("filled", f"planning with filled cameras: {self._plan.last_filled}")
        self._future = self._worker.submit(plan_and_build, self.model, outcome, prm, self._camera_info)
        self._future.add_done_callback(lambda _f: self._result_guard.trigger())

    def _not_planned(self, key: str, reason: str) -> None:
        self._plan.last_failure = reason
        self._warn(f"plan/{key}", f"not planning: {reason}")

    # --- outputs (executor thread) -----------------------------------------------------------------------------

    def _create_outputs(self) -> None:
        reliable = _qos("reliable", 10)
        topics: dict[str, tuple[type[Any], str]] = {
            "path": (Path, "~/output/path"),
            "reasoning": (ChainOfCausation, "~/output/reasoning"),
            "markers": (MarkerArray, "~/output/markers"),
            "stage_latency": (StageLatency, "~/debug/stage_latency"),
            **{f"{stage}_ms": (Float64, f"~/debug/{stage}_time_ms") for stage in DEBUG_TIMES},
        }
        if self.params.output.publish_odom_path:
            topics["path_odom"] = (Path, "~/output/path_odom")
        if self.params.node.publish_all_samples or self.params.model.num_samples > 1:
            topics["path_samples"] = (Path, "~/output/path_samples")
        self._pubs = {key: self.create_lifecycle_publisher(t, name, reliable) for key, (t, name) in topics.items()}
        if self.params.overlay.enabled:
            self._pubs["overlay"] = self.create_lifecycle_publisher(Image, "~/output/overlay", _qos("reliable", 2))

    def _on_result_ready(self) -> None:
        future = self._future
        if future is None or not future.done():
            return
        self._future = None
        plan = self._plan
        try:
            done = future.result()
        except Exception as exc:  # a bug in the worker itself: report, keep running
            plan.model_failures += 1
            self._not_planned("worker", f"worker failed: {type(exc).__name__}: {exc}")
            return
        plan.last_stage_ms = done.result.stage_ms
        if done.result.generation != self._intake.generation:
            plan.discarded += 1
            self._not_planned("discard", "result discarded: time jumped backwards during inference")
            return
        if done.messages is None:
            plan.plan_failed(model_failure=done.model_failure)
            self._not_planned("worker", done.failure)
            return
        if self.lifecycle is not Lifecycle.ACTIVE:
            plan.discarded += 1
            return
        self._publish(done)

    def _publish(self, done: WorkerResult) -> None:
        out = done.messages
        assert out is not None
        pubs = self._pubs
        pubs["path"].publish(out.path)
        for msg in out.reasoning:
            pubs["reasoning"].publish(msg)
        pubs["markers"].publish(out.markers)
        if out.path_odom is not None and "path_odom" in pubs:
            pubs["path_odom"].publish(out.path_odom)
        for sample_path in out.sample_paths if "path_samples" in pubs else ():
            pubs["path_samples"].publish(sample_path)
        if out.overlay is not None and "overlay" in pubs:
            pubs["overlay"].publish(out.overlay)
        for stage in DEBUG_TIMES:
            if f"{stage}_ms" in done.result.stage_ms:
                pubs[f"{stage}_ms"].publish(Float64(data=float(done.result.stage_ms[f"{stage}_ms"])))
        pubs["stage_latency"].publish(out.latency)
        self._plan.published_plan(f"{out.agreement.name}: {out.agreement_detail}", time.monotonic())
        self._plan.last_publish_age_ms = (self.get_clock().now().nanoseconds - done.result.t0_ns) / 1e6
        if out.agreement is Agreement.DISAGREE:
            self._warn("disagree", f"reasoning and trajectory disagree: {out.agreement_detail}")

    # --- diagnostics and logs ----------------------------------------------------------------------------------

    def _warn(self, key: str, text: str) -> None:
        self._log([Notice(key, text)])

    def _log(self, notices: Iterable[Notice]) -> None:
        """Throttled per key (``log_throttle_sec``)."""
        for notice in notices:
            if self._throttle.ready(notice.key, self.params.node.log_throttle_sec):
                getattr(self.get_logger(), "error" if notice.level == "error" else "warning")(notice.text)

    def _diagnostics_timer(self) -> Timer:
        return self.create_timer(self.params.diagnostics.period_sec, self._publish_diagnostics, clock=self._steady)

    def _publish_diagnostics(self) -> None:
        """Model, planning, odometry and one status per camera, derived in core.diagnostics; stamped node time."""
        now_ns = self.get_clock().now().nanoseconds
        prm, intake = self.params, self._intake
        info = self.model.info if self.model is not None else None
        max_age = prm.planning.max_sample_age_sec
        self._plan.flushes = intake.flushes
        statuses = {
            "model": model_status(
                self.model_state,
                self.lifecycle,
                self.model_error,
                backend=prm.model.backend,
                model_path=prm.model.model_path,
                info=info,
            ),
            "planning": planning_status(self._plan, self.lifecycle),
            "odometry": odometry_status(intake.odometry_stats, now_ns, max_age, frame_id=intake.odometry.frame_id),
        }
        required = set(info.cameras) if info is not None else set()
        for cam in CAMERA_NAMES:
            statuses[f"camera {cam}"] = camera_status(
                intake.camera_stats[cam],
                now_ns,
                max_age,
                topic=prm.camera(cam).topic,
                message_type=prm.camera(cam).message_type,
                used_by_model=cam in required,
            )
        msg = DiagnosticArray(status=[self._status_msg(name, status) for name, status in statuses.items()])
        msg.header.stamp = self.get_clock().now().to_msg() if now_ns > 0 else TimeMsg()
        self._diag_pub.publish(msg)

    def _status_msg(self, name: str, status: Status) -> DiagnosticStatus:
        return DiagnosticStatus(
            level=bytes([status.level]),
            name=f"{self.get_name()}: {name}",
            message=status.message,
            hardware_id=self.get_fully_qualified_name(),
            values=[KeyValue(key=k, value=str(v)) for k, v in status.values.items()],
        )


# --- entry points ----------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ros-args",
        dest="ros_args",
        nargs=argparse.REMAINDER,
        default=[],
        help="ROS arguments, e.g. --ros-args -p model.backend:=test_policy --params-file config/alpamayo.yaml",
    )


def run(args: argparse.Namespace) -> int:
    ros_args = list(args.ros_args or [])
    return spin(["alpamayo_node", "--ros-args", *ros_args] if ros_args else ["alpamayo_node"])


def main() -> int:
    return spin(sys.argv)


def spin(argv: list[str], load_model: ModelLoader = _load_model) -> int:
    """Run the node until Ctrl-C, an external shutdown or its lifecycle shutdown transition; returns 0."""
    apply_ros_defaults()
    rclpy.init(args=argv)
    node = AlpamayoNode(load_model=load_model)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.params.node.autostart:
            node.trigger_configure()
            if node.lifecycle is Lifecycle.INACTIVE:
                node.trigger_activate()
        while rclpy.ok() and node.lifecycle is not Lifecycle.FINALIZED:
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.release()
        logging.getLogger("alpamayo_ros").removeHandler(node._log_handler)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
