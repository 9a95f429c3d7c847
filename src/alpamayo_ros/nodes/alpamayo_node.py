"""alpamayo_node: seven synchronized cameras + odometry in; 64-pose Path, Chain-of-Causation and markers out.

A managed (lifecycle) node and nothing but wiring; the logic lives in ``alpamayo_ros.core``:

- parameters: declared from ``core.params`` (one source of truth), validated on configure and on every change;
- subscriptions buffer raw messages (cameras in ``core.sync``, odometry in ``core.ego_history``); nothing is
  decoded in a callback;
- a planning timer (steady clock, ``planning_rate_hz``) checks, in order: no inference in flight, a complete
  synchronized sample, not stale, ego history available; then hands the sample to ONE worker thread;
- the worker runs ``core.planning.run_job``: decodes/resizes the frames it needs, runs the model, checks the
  output, builds the messages and RETURNS a result; a guard condition wakes the executor, which publishes it (or
  records why not);
- ``/diagnostics`` says what the node is doing and why it is not planning: the node counts into
  ``core.diagnostics`` stats, derives each status there, and only wraps and publishes them.

Threading: a single-threaded executor owns all node state; the worker touches only the job it is given.

Topics (relative names resolve under the node, e.g. /alpamayo_node/output/path; all remappable):

| topic | type | QoS | frame / stamp |
|---|---|---|---|
| ``~/input/<camera>/image`` x7 (param) | sensor_msgs/Image or CompressedImage | param, depth 5 | camera stamp |
| ``~/input/odometry`` | nav_msgs/Odometry | best effort, depth 50 | odom <- base_link |
| ``overlay.camera_info_topic`` (overlay only) | sensor_msgs/CameraInfo | best effort, depth 2 | |
| ``~/output/path`` | nav_msgs/Path, 64 poses | reliable, depth 10 | base_link; stamp t0, pose i at t0+(i+1)*0.1 s |
| ``~/output/path_odom`` | nav_msgs/Path | reliable, depth 10 | odometry frame; stamps as above |
| ``~/output/path_samples`` (publish_all_samples) | nav_msgs/Path per extra sample | reliable, depth 10 | as path |
| ``~/output/reasoning`` | alpamayo_ros/ChainOfCausation | reliable, depth 10 | same header as the path |
| ``~/output/markers`` | visualization_msgs/MarkerArray | reliable, depth 10 | base_link, frame_locked |
| ``~/output/overlay`` (overlay.enabled) | sensor_msgs/Image rgb8 | reliable, depth 2 | stamp t0 |
| ``/diagnostics`` | diagnostic_msgs/DiagnosticArray | reliable, depth 10 | node clock |
| ``~/debug/{processing,select,images,inference,build}_time_ms`` | std_msgs/Float64 | reliable, depth 10 | |
| ``~/debug/stage_latency`` | alpamayo_ros/StageLatency | reliable, depth 10 | |
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import sys
import time
import traceback
from typing import Any

import numpy as np
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
from alpamayo_ros.core.builders import ns_from_stamp
from alpamayo_ros.core.decisions import Agreement
from alpamayo_ros.core.diagnostics import (
    PlanningStats,
    Status,
    StreamStats,
    Throttle,
    camera_status,
    model_status,
    odometry_status,
    planning_status,
)
from alpamayo_ros.core.ego_history import (
    EgoHistoryFailure,
    OdometryBuffer,
    OdometryRejectedError,
    build_ego_history,
    make_odom_sample,
)
from alpamayo_ros.core.images import UnsupportedEncodingError, is_supported_encoding
from alpamayo_ros.core.planning import PlanJob, PlanResult, check_prediction, run_job, sync_config, synthetic_input
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.sync import AddOutcome, FrameEntry, FrameSynchronizer, SyncFailure
from alpamayo_ros.core.types import DrivingModel
from alpamayo_ros.msg import ChainOfCausation, StageLatency
from alpamayo_ros.rosenv import apply_ros_defaults

# check_prediction lives in core.planning; re-exported for callers of the node module
__all__ = ["AlpamayoNode", "add_arguments", "check_prediction", "main", "run"]


class _RosLogHandler(logging.Handler):
    """Forwards the package's Python logging (model load progress, provenance) to the node's ROS logger."""

    def __init__(self, ros_logger: Any) -> None:
        super().__init__(logging.INFO)
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        text = f"[{record.name}] {record.getMessage()}"
        if record.levelno >= logging.ERROR:
            self._ros_logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._ros_logger.warning(text)
        else:
            self._ros_logger.info(text)


def _qos(reliability: str, depth: int) -> QoSProfile:
    rel = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel)


class AlpamayoNode(LifecycleNode):  # type: ignore[misc]  # rclpy is untyped for mypy here
    """The planning node. Transition callbacks appear in lifecycle order; then inputs, tick, worker, outputs."""

    def __init__(self, node_name: str = P.NODE_NAME, **kwargs: Any) -> None:
        self.model: DrivingModel | None = None
        self.model_state = "unconfigured"  # unconfigured | loading | ready | error
        self.model_error = ""
        self.lifecycle_state = "unconfigured"
        self._sync: FrameSynchronizer | None = None
        self._odom = OdometryBuffer()
        self._generation = 0
        self._subs: list[Subscription[Any]] = []
        self._pubs: dict[str, LifecyclePublisher[Any]] = {}
        self._debug_pubs: dict[str, LifecyclePublisher[Any]] = {}
        self._plan_timer: Timer | None = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._future: concurrent.futures.Future[PlanResult] | None = None
        self._camera_stats = {cam: StreamStats() for cam in CAMERA_NAMES}
        self._odom_stats = StreamStats()
        self._plan = PlanningStats()
        self._camera_info: CameraInfo | None = None
        self._last_tick_now_ns = 0
        self._throttle = Throttle()
        super().__init__(node_name, **kwargs)

        self._declare_parameters()
        values, problems = self._read_parameter_values()
        if not problems:
            problems = P.validate(P.from_values(values))
        # invalid start-up values: wire diagnostics with defaults; configure re-reads and fails with the reasons
        self.params = P.from_values(values) if not problems else P.from_values({})
        if problems:
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
        self._diag_timer = self.create_timer(
            self.params.diagnostics_period_sec, self._publish_diagnostics, clock=self._steady
        )

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, load the model (progress logged), create publishers and subscriptions."""
        values, problems = self._read_parameter_values()
        if not problems:
            self.params = P.from_values(values)
            problems = P.validate(self.params)
        if problems:
            return self._fail_configure("invalid parameters: " + "; ".join(problems))
        prm = self.params
        spec = prm.model_spec()
        self.model_state = "loading"
        self.model_error = ""
        self._publish_diagnostics()
        self.get_logger().info(
            f"loading model: backend={spec.backend} model_path={spec.model_path} device={spec.device}"
        )
        started = time.perf_counter()
        try:
            from alpamayo_ros.runtime.registry import load_model

            model = load_model(spec)
        except Exception as exc:  # any loader failure is reported, never silently replaced by another backend
            detail = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"model load failed: {detail}\n{traceback.format_exc()}")
            return self._fail_configure(f"model load failed ({spec.backend}, {spec.model_path}): {detail}")
        info = model.info
        self.get_logger().info(
            f"model loaded in {time.perf_counter() - started:.1f} s: {info.name} {info.version}"
            f"{' (UNTRAINED)' if info.untrained else ''}; cameras {', '.join(info.cameras)}; "
            f"frames at {info.frame_offsets_sec} s; image size {info.image_size_hw or 'native'}"
        )
        if hasattr(model, "raise_on_predict"):
            model.raise_on_predict = prm.model_test_policy_raise
        try:
            self._sync = FrameSynchronizer(sync_config(prm, info))
        except ValueError as exc:
            model.close()
            return self._fail_configure(f"synchronisation settings do not fit the model: {exc}")
        if prm.model_warmup:
            self.get_logger().info("warm-up inference on a synthetic sample")
            warm_started = time.perf_counter()
            try:
                model.predict(synthetic_input(info.image_size_hw, info.cameras, info.frame_offsets_sec))
            except Exception as exc:  # a model that cannot run one inference is not ready
                model.close()
                return self._fail_configure(f"warm-up inference failed: {type(exc).__name__}: {exc}")
            self.get_logger().info(f"warm-up done in {(time.perf_counter() - warm_started) * 1e3:.0f} ms")
        self.model = model
        self.model_state = "ready"
        self._odom = OdometryBuffer(prm.ego_buffer_sec, prm.sync_backwards_jump_sec)
        try:
            self._create_outputs()
            self._create_inputs()
        except Exception as exc:  # rclpy raises on invalid topic names; without this the reason is swallowed
            self._release()
            return self._fail_configure(f"could not create publishers/subscriptions: {type(exc).__name__}: {exc}")
        self._restart_diagnostics_timer()
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="alpamayo_infer")
        self.lifecycle_state = "inactive"
        self.get_logger().info("configured")
        return TransitionCallbackReturn.SUCCESS

    def _restart_diagnostics_timer(self) -> None:
        """diagnostics.period_sec is a configure-time parameter: the timer follows the configured value."""
        self.destroy_timer(self._diag_timer)
        self._diag_timer = self.create_timer(
            self.params.diagnostics_period_sec, self._publish_diagnostics, clock=self._steady
        )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        period = 1.0 / self.params.planning_rate_hz
        self._plan_timer = self.create_timer(period, self._on_tick, clock=self._steady)
        self.lifecycle_state = "active"
        self.get_logger().info(f"active: planning at {self.params.planning_rate_hz:g} Hz")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_planning()
        self._generation += 1  # an inference still running belongs to the old activation: never published
        self.lifecycle_state = "inactive"
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.lifecycle_state = "unconfigured"
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.lifecycle_state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.model_state = "error"
        self.lifecycle_state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def _fail_configure(self, reason: str) -> TransitionCallbackReturn:
        self.model_state = "error"
        self.model_error = reason
        self.get_logger().error(f"configure failed: {reason}")
        self._publish_diagnostics()
        return TransitionCallbackReturn.FAILURE

    def _stop_planning(self) -> None:
        if self._plan_timer is not None:
            self.destroy_timer(self._plan_timer)
            self._plan_timer = None

    def _release(self) -> None:
        """Stop planning, wait for the worker, drop I/O, free the model (lifecycle cleanup / shutdown)."""
        self._stop_planning()
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
        self._future = None
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs.clear()
        for pub in (*self._pubs.values(), *self._debug_pubs.values()):
            self.destroy_lifecycle_publisher(pub)
        self._pubs.clear()
        self._debug_pubs.clear()
        if self.model is not None:
            self.model.close()
            self.model = None
        self._sync = None
        self._odom.flush()
        if self.model_state != "error":
            self.model_state = "unconfigured"

    # --- parameters --------------------------------------------------------------------------------------------

    def _declare_parameters(self) -> None:
        for spec in P.PARAM_SPECS:
            constraints = ""
            if spec.choices is not None:
                constraints = "one of: " + ", ".join(spec.choices)
            elif spec.min_value is not None or spec.max_value is not None:
                constraints = f"range [{spec.min_value}, {spec.max_value}]"
            descriptor = ParameterDescriptor(
                name=spec.name,
                description=f"{spec.description} (applies: {spec.when})",
                additional_constraints=constraints,
                # rclpy would raise on "tokens:=64.0" or "[1, 0, 1]" for a double array and kill the node at start;
                # types are checked by P.type_problem instead, so a bad one is rejected with a reason
                dynamic_typing=True,
            )
            self.declare_parameter(spec.name, spec.default, descriptor)

    def _read_parameter_values(self) -> tuple[dict[str, Any], list[str]]:
        values: dict[str, Any] = {}
        problems: list[str] = []
        for spec in P.PARAM_SPECS:
            value = self.get_parameter(spec.name).value
            problem = P.type_problem(spec, value)
            if problem:
                problems.append(problem)
                continue
            values[spec.name] = list(value) if isinstance(spec.default, list) else value
        return values, problems

    def _on_set_parameters(self, changes: list[Parameter[Any]]) -> SetParametersResult:
        """Validate the whole parameter set with the changes applied; reject with reasons, or accept and apply."""
        ours = {p.name: p.value for p in changes if p.name in P.SPECS_BY_NAME}
        if not ours:
            return SetParametersResult(successful=True)
        for name, value in ours.items():
            problem = P.type_problem(P.SPECS_BY_NAME[name], value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        try:
            candidate = P.replace(
                self.params, {k: list(v) if isinstance(v, tuple | list) else v for k, v in ours.items()}
            )
        except (KeyError, TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        reasons = P.validate(candidate)
        if reasons:
            self.get_logger().warning("rejected parameter change: " + "; ".join(reasons))
            return SetParametersResult(successful=False, reason="; ".join(reasons))
        configured = self.lifecycle_state != "unconfigured"
        later = [n for n in ours if P.SPECS_BY_NAME[n].when == "configure" and configured]
        if later:
            # Accepted and stored (on_configure re-reads every parameter), but the running configuration keeps the
            # values it was configured with: a frame_id or topic changing under a live model would mislabel plans.
            self.get_logger().info(f"{', '.join(later)} will apply at the next configure")
            live = {k: v for k, v in ours.items() if P.SPECS_BY_NAME[k].when == "live"}
            candidate = P.replace(
                self.params, {k: list(v) if isinstance(v, tuple | list) else v for k, v in live.items()}
            )
        self.params = candidate
        if self.model is not None and hasattr(self.model, "raise_on_predict"):
            self.model.raise_on_predict = candidate.model_test_policy_raise
        return SetParametersResult(successful=True)

    # --- inputs ------------------------------------------------------------------------------------------------

    def _create_inputs(self) -> None:
        prm = self.params
        for cam in prm.cameras:
            if cam.message_type == "compressed":
                sub = self.create_subscription(
                    CompressedImage,
                    cam.topic,
                    lambda m, c=cam.name: self._on_compressed(c, m),
                    _qos(cam.reliability, 5),
                )
            else:
                sub = self.create_subscription(
                    Image, cam.topic, lambda m, c=cam.name: self._on_image(c, m), _qos(cam.reliability, 5)
                )
            self._subs.append(sub)
        self._subs.append(
            self.create_subscription(Odometry, "~/input/odometry", self._on_odometry, _qos("best_effort", 50))
        )
        if prm.overlay_enabled:
            self._subs.append(
                self.create_subscription(
                    CameraInfo, prm.overlay_camera_info_topic, self._on_camera_info, _qos("best_effort", 2)
                )
            )

    def _topic(self, camera: str) -> str:
        return self.params.camera(camera).topic

    def _on_image(self, camera: str, msg: Image) -> None:
        stats = self._camera_stats[camera]
        stamp_ns = ns_from_stamp(msg.header.stamp)
        error: str | None = None
        if not is_supported_encoding(msg.encoding):
            error = str(UnsupportedEncodingError(msg.encoding))
            stats.error(stamp_ns, error)
            self._log_error(f"enc/{camera}", f"{self._topic(camera)}: {error}")
        size = (int(msg.width), int(msg.height))
        if error is None:
            changed = stats.note_size(size, stamp_ns)
            if changed is not None:
                self._log_warn(f"size/{camera}", f"{self._topic(camera)}: {changed}")
        self._buffer_frame(camera, FrameEntry(stamp_ns, msg, size, error))

    def _on_compressed(self, camera: str, msg: CompressedImage) -> None:
        stamp_ns = ns_from_stamp(msg.header.stamp)
        fmt = msg.format.lower()
        error = None
        if fmt and not any(name in fmt for name in ("jpeg", "jpg", "png")):
            error = str(UnsupportedEncodingError(msg.format))
            self._camera_stats[camera].error(stamp_ns, error)
            self._log_error(f"enc/{camera}", f"{self._topic(camera)}: {error}")
        self._buffer_frame(camera, FrameEntry(stamp_ns, msg, None, error))

    def _buffer_frame(self, camera: str, entry: FrameEntry) -> None:
        stats = self._camera_stats[camera]
        stats.received += 1
        if entry.stamp_ns <= 0:
            stats.error(entry.stamp_ns, "zero stamp (frame dropped)")
            self._log_warn(f"stamp/{camera}", f"{self._topic(camera)}: frame without a stamp dropped")
            return
        if self._sync is None:
            return
        outcome = self._sync.add(camera, entry)
        if outcome is AddOutcome.DUPLICATE:
            stats.duplicates += 1
            self._log_warn(f"dup/{camera}", f"{self._topic(camera)}: duplicate stamp {entry.stamp_ns} dropped")
            return
        if outcome is AddOutcome.OUT_OF_ORDER:
            stats.out_of_order += 1
            self._log_warn(f"ooo/{camera}", f"{self._topic(camera)}: out-of-order stamp {entry.stamp_ns} reordered")
        elif outcome is AddOutcome.TOO_OLD:
            stats.error(entry.stamp_ns, "frame older than the buffer (dropped)")
            return
        elif outcome is AddOutcome.TIME_JUMPED_BACK:
            self._flushed(f"{camera} stamp went back to {entry.stamp_ns / 1e9:.3f} s", already="cameras")
        stats.accepted(entry.stamp_ns, time_jumped_back=outcome is AddOutcome.TIME_JUMPED_BACK)

    def _on_odometry(self, msg: Odometry) -> None:
        stats = self._odom_stats
        stats.received += 1
        stamp_ns = ns_from_stamp(msg.header.stamp)
        p, q, tw = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
        try:
            twist = (tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z)
            if not np.all(np.isfinite(twist)):
                raise OdometryRejectedError(f"non-finite twist {list(twist)}")
            sample = make_odom_sample(stamp_ns, (p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        except OdometryRejectedError as exc:
            stats.error(stamp_ns, f"rejected: {exc}")
            self._log_warn("odom/reject", f"odometry at {stamp_ns / 1e9:.3f} s rejected: {exc}")
            return
        outcome = self._odom.add(sample, msg.header.frame_id)
        if outcome == "duplicate":
            stats.duplicates += 1
            return
        if outcome == "bad_stamp":
            stats.error(stamp_ns, f"odometry stamp {stamp_ns} ns is not a time (dropped)")
            self._log_warn("odom/stamp", f"odometry with stamp {stamp_ns} ns dropped")
            return
        if outcome == "out_of_order":
            stats.out_of_order += 1
        elif outcome == "too_old":
            stats.error(stamp_ns, "odometry older than the buffer (dropped)")
            return
        elif outcome == "time_jumped_back":
            self._flushed(f"odometry stamp went back to {stamp_ns / 1e9:.3f} s", already="odometry")
        elif outcome == "frame_changed":
            # poses of two frames must never be interpolated into one history: start over in the new frame
            stats.error(stamp_ns, f"odometry frame changed to {msg.header.frame_id!r}: history restarted")
            self._flushed(f"odometry frame changed to {msg.header.frame_id!r}", already="odometry")
        stats.accepted(stamp_ns, time_jumped_back=outcome in ("time_jumped_back", "frame_changed"))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _flushed(self, why: str, already: str) -> None:
        """Time went backwards: forget every buffer and any plan in flight (it was built on the old timeline).

        ``already`` names the buffer ("cameras" or "odometry") that flushed itself before keeping the message of
        the new timeline; flushing it again would drop that message.
        """
        if self._sync is not None and already != "cameras":
            self._sync.flush()
        if already != "odometry":
            self._odom.flush()
        for stats in (*self._camera_stats.values(), self._odom_stats):
            stats.stamps.clear()
        self._generation += 1
        self._plan.flushes += 1
        self._plan.last_planned_t0_ns = 0
        self._log_warn("flush", f"time jumped backwards ({why}): all buffers flushed")

    # --- planning tick (executor thread) -----------------------------------------------------------------------

    def _on_tick(self) -> None:
        """Checklist of early returns; the last step hands one job to the worker."""
        plan = self._plan
        plan.ticks += 1
        prm = self.params
        if self.model is None or self._sync is None or self._worker is None:
            return
        now_ns = self.get_clock().now().nanoseconds
        if now_ns < self._last_tick_now_ns - int(prm.sync_backwards_jump_sec * 1e9):
            went_back = f"node clock went back from {self._last_tick_now_ns / 1e9:.3f} to {now_ns / 1e9:.3f} s"
            self._flushed(went_back, already="")
        self._last_tick_now_ns = now_ns
        if self._future is not None:
            plan.skipped_busy += 1
            return
        started = time.perf_counter()
        selected = self._sync.select()
        if isinstance(selected, SyncFailure):
            # the same anchor frame may complete on a later tick (a slower camera): retried, reported once
            if plan.first_failure(selected.t0_ns, "sync"):
                plan.sync_failures += 1
                self._not_planned("sync", f"sync failed: {selected.summary()}")
            return
        t0_ns = selected.t0_ns
        plan.last_t0_ns = t0_ns
        if t0_ns <= plan.last_planned_t0_ns:
            plan.no_new_sample += 1
            return
        if now_ns <= 0:
            self._not_planned("clock", "node clock is zero (use_sim_time without /clock?)")
            return
        age_ns = now_ns - t0_ns
        if abs(age_ns) > prm.max_sample_age_sec * 1e9:
            if plan.first_failure(t0_ns, "stale"):
                plan.stale_samples += 1
                self._not_planned(
                    "stale",
                    f"sample t0 {t0_ns / 1e9:.3f} s is {age_ns / 1e9:+.3f} s from the node clock "
                    f"(max_sample_age_sec {prm.max_sample_age_sec})",
                )
            return
        ego = build_ego_history(
            self._odom, t0_ns, max_gap_sec=prm.ego_max_gap_sec, max_extrapolation_sec=prm.ego_max_extrapolation_sec
        )
        if isinstance(ego, EgoHistoryFailure):
            if plan.first_failure(t0_ns, "ego"):
                plan.ego_failures += 1
                self._not_planned("ego", ego.reason)
            return
        plan.last_filled = ", ".join(f"{c} ({r})" for c, r in selected.filled.items())
        plan.last_warnings = "; ".join(f"{w.camera}: {w.reason}" for w in selected.warnings)
        if selected.filled:
            self._log_warn("filled", f"planning with filled cameras: {plan.last_filled}")
        overlay_entry = self._sync.frame_at(prm.overlay_camera, t0_ns) if prm.overlay_enabled else None
        job = PlanJob(
            sample=selected,
            ego=ego,
            generation=self._generation,
            params=prm,
            overlay_entry=overlay_entry,
            camera_info=self._camera_info,
            select_ms=(time.perf_counter() - started) * 1e3,
        )
        plan.last_planned_t0_ns = t0_ns
        model = self.model
        self._future = self._worker.submit(run_job, model, job)
        self._future.add_done_callback(lambda _f: self._result_guard.trigger())

    def _not_planned(self, key: str, reason: str) -> None:
        self._plan.last_failure = reason
        self._log_warn(f"plan/{key}", f"not planning: {reason}")

    # --- outputs (executor thread) -----------------------------------------------------------------------------

    def _create_outputs(self) -> None:
        reliable = _qos("reliable", 10)
        self._pubs = {
            "path": self.create_lifecycle_publisher(Path, "~/output/path", reliable),
            "reasoning": self.create_lifecycle_publisher(ChainOfCausation, "~/output/reasoning", reliable),
            "markers": self.create_lifecycle_publisher(MarkerArray, "~/output/markers", reliable),
        }
        if self.params.output_publish_odom_path:
            self._pubs["path_odom"] = self.create_lifecycle_publisher(Path, "~/output/path_odom", reliable)
        if self.params.publish_all_samples or self.params.model_num_samples > 1:
            self._pubs["path_samples"] = self.create_lifecycle_publisher(Path, "~/output/path_samples", reliable)
        if self.params.overlay_enabled:
            self._pubs["overlay"] = self.create_lifecycle_publisher(Image, "~/output/overlay", _qos("reliable", 2))
        for name in ("processing_time_ms", "select_time_ms", "images_time_ms", "inference_time_ms", "build_time_ms"):
            self._debug_pubs[name] = self.create_lifecycle_publisher(Float64, f"~/debug/{name}", reliable)
        self._debug_pubs["stage_latency"] = self.create_lifecycle_publisher(
            StageLatency, "~/debug/stage_latency", reliable
        )

    def _on_result_ready(self) -> None:
        future = self._future
        if future is None or not future.done():
            return
        self._future = None
        plan = self._plan
        try:
            result = future.result()
        except Exception as exc:  # a bug in the worker itself: report, keep running
            plan.model_failures += 1
            self._not_planned("worker", f"worker failed: {type(exc).__name__}: {exc}")
            return
        plan.last_stage_ms = result.stage_ms
        if result.generation != self._generation:
            plan.discarded += 1
            self._not_planned("discard", "result discarded: time jumped backwards during inference")
            return
        if result.outputs is None:
            plan.worker_failed(result.failure)
            self._not_planned("worker", result.failure or "unknown failure")
            return
        if self.lifecycle_state != "active":
            plan.discarded += 1
            return
        out = result.outputs
        self._pubs["path"].publish(out.path)
        for msg in out.reasoning:
            self._pubs["reasoning"].publish(msg)
        self._pubs["markers"].publish(out.markers)
        if out.path_odom is not None and "path_odom" in self._pubs:
            self._pubs["path_odom"].publish(out.path_odom)
        if "path_samples" in self._pubs:
            for sample_path in out.sample_paths:
                self._pubs["path_samples"].publish(sample_path)
        if out.overlay is not None and "overlay" in self._pubs:
            self._pubs["overlay"].publish(out.overlay)
        for key, topic in (
            ("processing_ms", "processing_time_ms"),
            ("select_ms", "select_time_ms"),
            ("images_ms", "images_time_ms"),
            ("inference_ms", "inference_time_ms"),
            ("build_ms", "build_time_ms"),
        ):
            if key in result.stage_ms:
                self._debug_pubs[topic].publish(Float64(data=float(result.stage_ms[key])))
        if result.latency is not None:
            self._debug_pubs["stage_latency"].publish(result.latency)
        plan.published_plan(f"{Agreement(out.agreement).name}: {out.agreement_detail}", time.monotonic())
        plan.last_publish_age_ms = (self.get_clock().now().nanoseconds - result.t0_ns) / 1e6
        if out.agreement == Agreement.DISAGREE:
            self._log_warn("disagree", f"reasoning and trajectory disagree: {out.agreement_detail}")

    # --- diagnostics and logs ----------------------------------------------------------------------------------

    def _log_warn(self, key: str, text: str) -> None:
        if self._throttle.ready(key, self.params.log_throttle_sec):
            self.get_logger().warning(text)

    def _log_error(self, key: str, text: str) -> None:
        if self._throttle.ready(key, self.params.log_throttle_sec):
            self.get_logger().error(text)

    def _publish_diagnostics(self) -> None:
        """Model, planning, odometry and one status per camera, derived in core.diagnostics; stamped node time."""
        now_ns = self.get_clock().now().nanoseconds
        stamp = self.get_clock().now().to_msg() if now_ns > 0 else TimeMsg()
        prm = self.params
        info = self.model.info if self.model is not None else None
        statuses = {
            "model": model_status(
                self.model_state,
                self.lifecycle_state,
                self.model_error,
                backend=prm.model_backend,
                model_path=prm.model_model_path,
                info=info,
            ),
            "planning": planning_status(self._plan, self.lifecycle_state),
            "odometry": odometry_status(self._odom_stats, now_ns, prm.max_sample_age_sec, frame_id=self._odom.frame_id),
        }
        required = set(info.cameras) if info is not None else set()
        for cam in CAMERA_NAMES:
            cam_params = prm.camera(cam)
            statuses[f"camera {cam}"] = camera_status(
                self._camera_stats[cam],
                now_ns,
                prm.max_sample_age_sec,
                topic=cam_params.topic,
                message_type=cam_params.message_type,
                used_by_model=cam in required,
            )
        msg = DiagnosticArray(status=[self._status_msg(name, status) for name, status in statuses.items()])
        msg.header.stamp = stamp
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
    return _spin(["alpamayo_node", "--ros-args", *ros_args] if ros_args else ["alpamayo_node"])


def main() -> int:
    return _spin(sys.argv)


def _spin(argv: list[str]) -> int:
    apply_ros_defaults()
    rclpy.init(args=argv)
    node = AlpamayoNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.params.autostart:
            node.trigger_configure()
            if node.lifecycle_state == "inactive":
                node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._release()
        logging.getLogger("alpamayo_ros").removeHandler(node._log_handler)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
