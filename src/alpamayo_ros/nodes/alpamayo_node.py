"""alpamayo_node: seven synchronized cameras + odometry in; 64-pose Path, Chain-of-Causation and markers out.

A managed (lifecycle) node and nothing but ROS wiring; the logic lives in ``alpamayo_ros.core``:

- parameters are declared from ``core.params`` (derived from each module's config) and validated as a transaction;
- subscriptions (``nodes.input_subscriptions``) hand every message to ``core.intake.InputIntake`` (buffering,
  counting; nothing is decoded on the executor);
- a planning timer (steady clock) calls ``core.planning.select_job``; a job goes to ONE worker thread, which runs
  ``core.planning.plan_once`` and builds the messages (``nodes.plan_messages``); a guard condition wakes the
  executor, which publishes them (or records why not);
- ``/diagnostics`` is derived in ``core.diagnostics`` from the intake's and the planner's counters.

Threading: a single-threaded executor owns all node state; the worker touches only the job it is given.
Topics: see the README (relative names resolve under the node, e.g. /alpamayo_node/output/path; all remappable).
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode
from rclpy.lifecycle.node import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.timer import Timer

from alpamayo_ros.core.decisions import Agreement
from alpamayo_ros.core.diagnostics import Lifecycle, ModelState, PlanningStats
from alpamayo_ros.core.intake import InputIntake, Notice
from alpamayo_ros.core.model_setup import ModelLoader, ModelSetupError, prepare_model
from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.node_status import node_statuses
from alpamayo_ros.core.params import (
    NODE_NAME,
    PARAM_SPECS,
    SPECS_BY_NAME,
    NodeParams,
    check_change,
    params_from_declared,
)
from alpamayo_ros.core.planning import Skip, Unpublished, select_job, settle_result, worker_crashed
from alpamayo_ros.core.types import DrivingModel
from alpamayo_ros.nodes.input_subscriptions import InputSubscriptions
from alpamayo_ros.nodes.plan_messages import WorkerResult, plan_and_build
from alpamayo_ros.nodes.plan_publishers import PlanPublishers
from alpamayo_ros.nodes.ros_glue import NoticeLog, descriptor, diagnostic_array, forward_package_logs

__all__ = ["AlpamayoNode", "load_model_from_registry"]


def load_model_from_registry(spec: ModelSpec) -> DrivingModel:
    """The node's default model loader: the backend registry (torch is imported only when a model is loaded)."""
    from alpamayo_ros.runtime.registry import load_model

    return load_model(spec)


class AlpamayoNode(LifecycleNode):  # type: ignore[misc]  # rclpy is untyped for mypy here
    """The planning node. Transition callbacks appear in lifecycle order; then parameters, inputs, tick, outputs.

    ``load_model`` turns the configured ``model.*`` spec into a model (default: the backend registry); tests pass
    their own to inject a failing model. The process around it (spin, exit) is ``nodes.node_main``.
    """

    def __init__(
        self, node_name: str = NODE_NAME, *, load_model: ModelLoader = load_model_from_registry, **kwargs: Any
    ) -> None:
        self.model: DrivingModel | None = None
        self.model_state = ModelState.UNCONFIGURED
        self.model_error = ""
        self.lifecycle = Lifecycle.UNCONFIGURED
        self._load_model = load_model
        self._intake = InputIntake()
        self._plan = PlanningStats()
        self._inputs: InputSubscriptions | None = None
        self._outputs: PlanPublishers | None = None
        self._plan_timer: Timer | None = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._future: concurrent.futures.Future[WorkerResult] | None = None
        super().__init__(node_name, **kwargs)
        for spec in PARAM_SPECS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        params, problems = params_from_declared(self._declared())
        self.params = params or NodeParams()  # diagnostics start with defaults; configure fails with the reasons
        if problems:
            self.get_logger().error("invalid parameters: " + "; ".join(problems))
        self.log_handler = forward_package_logs(self.get_logger())
        self._log = NoticeLog(self.get_logger(), lambda: self.params.node.log_throttle_sec)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._result_guard = self.create_guard_condition(self._on_result_ready)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self._diagnostics_timer()

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, load the model (progress logged), warm it up, create publishers and subscriptions."""
        params, problems = params_from_declared(self._declared())
        if params is None:
            return self._fail_configure("invalid parameters: " + "; ".join(problems))
        self.params = params
        self.model_state, self.model_error = ModelState.LOADING, ""
        self._publish_diagnostics()
        try:
            model = prepare_model(self._load_model, self.params, self._intake, self.get_logger().info)
        except ModelSetupError as exc:
            return self._fail_configure(str(exc))
        self.model, self.model_state = model, ModelState.READY
        try:
            self._outputs = PlanPublishers(self, self.params)
            self._inputs = InputSubscriptions(self, self.params, self._intake, self._log, self._now_ns)
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
        """Stop planning and forget the buffered inputs: an inference still running belongs to the old activation
        (never published), and the next activation plans only on what arrives after this, whatever the clock did in
        between (the simulator restarts it for each rollout on the same node)."""
        self._stop_planning()
        self._intake.forget()
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
        if self._inputs is not None:
            self._inputs.destroy()
            self._inputs = None
        if self._outputs is not None:
            self._outputs.destroy()
            self._outputs = None
        if self.model is not None:
            self.model.close()
            self.model = None
        self._intake.release()
        if self.model_state is not ModelState.ERROR:
            self.model_state = ModelState.UNCONFIGURED

    # --- parameters --------------------------------------------------------------------------------------------

    def _declared(self) -> dict[str, Any]:
        """Every parameter's current value (pending configure-time changes included), by ROS name."""
        return {spec.name: self.get_parameter(spec.name).value for spec in PARAM_SPECS}

    def _on_set_parameters(self, changes: list[Parameter[Any]]) -> SetParametersResult:
        """Validate the changes together with every value the next configure will read (``core.params.check_change``);
        apply the live ones now, keep the configure-time ones for the next configure."""
        ours = {p.name: p.value for p in changes if p.name in SPECS_BY_NAME}
        if not ours:
            return SetParametersResult(successful=True)
        verdict = check_change(
            self.params, self._declared(), ours, configured=self.lifecycle is not Lifecycle.UNCONFIGURED
        )
        if verdict.running is None:
            self.get_logger().warning("rejected parameter change: " + "; ".join(verdict.problems))
            return SetParametersResult(successful=False, reason="; ".join(verdict.problems))
        if verdict.deferred:
            self.get_logger().info(f"{', '.join(verdict.deferred)} will apply at the next configure")
        self.params = verdict.running
        return SetParametersResult(successful=True)

    # --- inputs ------------------------------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

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
                self._not_planned(Unpublished(outcome.kind.value, outcome.reason))
            return
        if outcome.sample.filled:
            self._warn("filled", f"planning with filled cameras: {self._plan.last_filled}")
        camera_info = self._inputs.camera_info if self._inputs is not None else None
        self._future = self._worker.submit(plan_and_build, self.model, outcome, prm, camera_info)
        self._future.add_done_callback(lambda _f: self._result_guard.trigger())

    def _not_planned(self, why: Unpublished) -> None:
        self._plan.last_failure = why.reason
        self._warn(f"plan/{why.key}", f"not planning: {why.reason}")

    # --- outputs (executor thread) -----------------------------------------------------------------------------

    def _on_result_ready(self) -> None:
        future = self._future
        if future is None or not future.done():
            return
        self._future = None
        try:
            done = future.result()
        except Exception as exc:  # a bug in the worker itself: report, keep running
            self._not_planned(worker_crashed(self._plan, exc))
            return
        dropped = settle_result(
            self._plan,
            self._intake,
            done.result,
            failure=done.failure,
            model_failure=done.model_failure,
            has_output=done.messages is not None,
            active=self.lifecycle is Lifecycle.ACTIVE,
        )
        if dropped is None:
            self._publish(done)
        elif dropped.reason:
            self._not_planned(dropped)

    def _publish(self, done: WorkerResult) -> None:
        out = done.messages
        assert out is not None and self._outputs is not None
        self._outputs.publish(out, done.result.stage_ms)
        limit = self.params.diagnostics.uncertainty_warn
        uncertain = out.uncertainty > limit
        agreement = f"{out.agreement.name}: {out.agreement_detail}"
        self._plan.published_plan(
            agreement, time.monotonic(), out.uncertainty, uncertain=uncertain, spread_m=out.spread_m
        )
        self._plan.last_publish_age_ms = (self.get_clock().now().nanoseconds - done.result.t0_ns) / 1e6
        if out.agreement is Agreement.DISAGREE:
            self._warn("disagree", f"reasoning and trajectory disagree: {out.agreement_detail}")
        if uncertain:
            self._warn(
                "uncertain",
                f"uncertain reasoning ({out.uncertainty:.2f} > {limit:g}): {out.reasoning[0].reasoning_text}",
            )

    # --- diagnostics and logs ----------------------------------------------------------------------------------

    def _warn(self, key: str, text: str) -> None:
        self._log([Notice(key, text)])

    def _diagnostics_timer(self) -> Timer:
        return self.create_timer(self.params.diagnostics.period_sec, self._publish_diagnostics, clock=self._steady)

    def _publish_diagnostics(self) -> None:
        """Model, planning, odometry and one status per camera (``core.node_status``); stamped node time."""
        now_ns = self._now_ns()
        statuses = node_statuses(
            self.params,
            model_state=self.model_state,
            lifecycle=self.lifecycle,
            model_error=self.model_error,
            info=self.model.info if self.model is not None else None,
            intake=self._intake,
            plan=self._plan,
            now_ns=now_ns,
        )
        stamp = self.get_clock().now().to_msg() if now_ns > 0 else TimeMsg()
        self._diag_pub.publish(diagnostic_array(statuses, self.get_name(), self.get_fully_qualified_name(), stamp))
