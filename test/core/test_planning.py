"""The planning tick without ROS: sample selection (the checklist), plan_once (decode, model, sanity gate,
consistency), the warm-up sample, frame decoding and the synchroniser settings of a model."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CompressedImage, Image

from alpamayo_ros.core import params as P
from alpamayo_ros.core.builders import stamp_from_ns
from alpamayo_ros.core.diagnostics import PlanningStats
from alpamayo_ros.core.ego_history import EgoParams
from alpamayo_ros.core.intake import InputIntake
from alpamayo_ros.core.planning import (
    FailureKind,
    PlanJob,
    PlanningParams,
    Skip,
    SkipKind,
    Unpublished,
    check_prediction,
    decode_frame,
    plan_once,
    select_job,
    settle_result,
    sync_config,
    synthetic_input,
    worker_crashed,
)
from alpamayo_ros.core.rig import CAMERA_NAMES, HISTORY_STEPS
from alpamayo_ros.core.sync import FrameEntry, FrameSynchronizer
from alpamayo_ros.core.types import EgoHistory, ModelInfo, Prediction, StageTimings

from plan_samples import CAM, INFO, T0, FakeModel, camera_sample, fan, frames, job, prediction, rgb_image, straight

# --- check_prediction ---------------------------------------------------------------------------------------------


def test_good_prediction_passes() -> None:
    assert check_prediction(straight()) is None
    assert check_prediction(straight(3)) is None


@pytest.mark.parametrize(
    ("pred", "reason"),
    [
        (prediction(np.zeros((0, 64, 3)), ()), "model returned no samples"),
        (prediction(np.zeros((1, 32, 3))), "model output shapes (1, 32, 3) / (1, 32, 3, 3), expected (S, 64, 3)"),
        (prediction(np.zeros((1, 64, 2))), "expected (S, 64, 3) / (S, 64, 3, 3)"),
        (prediction(np.full((1, 64, 3), np.nan)), "model output contains NaN/Inf"),
        (prediction(np.full((1, 64, 3), -np.inf)), "model output contains NaN/Inf"),
        (prediction(np.zeros((2, 64, 3)), ("a",)), "1 reasoning texts for 2 samples"),
    ],
)
def test_bad_predictions_are_refused_with_a_reason(pred: Prediction, reason: str) -> None:
    verdict = check_prediction(pred)
    assert verdict is not None and reason in verdict


def test_non_finite_rotation_is_refused() -> None:
    pred = straight()
    pred.rotation[0, 5, 0, 0] = np.nan
    assert check_prediction(pred) == "model output contains NaN/Inf"


# --- warm-up sample and decoding ----------------------------------------------------------------------------------


def test_synthetic_input_is_black_and_stationary() -> None:
    sample = synthetic_input((40, 60), ("a", "b"), (-0.3, -0.2, -0.1, 0.0))
    assert sample.t0_ns == 0 and sample.frame_offsets_sec == (-0.3, -0.2, -0.1, 0.0)
    assert set(sample.images) == {"a", "b"}
    assert sample.images["a"].shape == (4, 40, 60, 3) and sample.images["a"].dtype == np.uint8
    assert not sample.images["b"].any()
    history: EgoHistory = sample.ego_history
    assert history.xyz.shape == (HISTORY_STEPS, 3) and not history.xyz.any()
    assert np.array_equal(history.rotation, np.broadcast_to(np.eye(3), (HISTORY_STEPS, 3, 3)))
    assert history.offsets_sec[-1] == 0.0 and history.offsets_sec[0] == pytest.approx(-0.1 * (HISTORY_STEPS - 1))
    assert synthetic_input(None, ("a",), (0.0,)).images["a"].shape == (1, 320, 576, 3)


def test_decode_frame_raw_and_compressed() -> None:
    raw = decode_frame(rgb_image())
    assert raw.shape == (8, 12, 3) and int(raw[0, 0, 0]) == 7
    ok, png = cv2.imencode(".png", np.full((6, 4, 3), 200, np.uint8))
    assert ok
    decoded = decode_frame(CompressedImage(format="png", data=png.tobytes()))
    assert decoded.shape == (6, 4, 3) and int(decoded[0, 0, 1]) == 200


# --- plan_once: the worker's cycle ---------------------------------------------------------------------------------


def test_plan_once_feeds_the_model_and_checks_every_sample() -> None:
    pred = straight(2)
    pred = Prediction(pred.xyz, pred.rotation, pred.reasoning, (1, 1), (False, False), StageTimings(total_ms=12.5))
    model = FakeModel(pred)
    result = plan_once(job(frames()), model, "first")
    assert (result.t0_ns, result.generation, result.failure) == (T0, 7, None)
    assert result.prediction is pred and len(result.reports) == 2
    assert set(result.stage_ms) == {"select_ms", "images_ms", "inference_ms", "processing_ms"}
    (given,) = model.inputs
    assert given.t0_ns == T0 and given.frame_offsets_sec == INFO.frame_offsets_sec
    assert given.images[CAM].shape == (2, 8, 12, 3)


def test_plan_once_plans_on_the_medoid_and_checks_each_sample_against_its_own_reasoning() -> None:
    """Sample 0 turns hard left, 1 keeps straight, 2 bends a little left: the plan is sample 2, and the
    consistency reports follow the samples they were made for."""
    xyz = fan([12.0, 0.0, 4.0])
    texts = ("Turn left.", "Keep lane.", "Keep lane.")
    result = plan_once(job(frames()), FakeModel(prediction(xyz, texts)), "medoid")
    assert result.prediction is not None
    assert np.array_equal(result.prediction.xyz, xyz[[2, 0, 1]])
    assert result.prediction.reasoning == ("Keep lane.", "Turn left.", "Keep lane.")
    first = plan_once(job(frames()), FakeModel(prediction(xyz, texts)), "first")
    assert first.prediction is not None and np.array_equal(first.prediction.xyz, xyz)
    assert result.reports == (first.reports[2], first.reports[0], first.reports[1])


def test_plan_once_model_exception_is_a_model_failure_with_traceback() -> None:
    result = plan_once(job(frames()), FakeModel(RuntimeError("boom")), "first")
    assert result.prediction is None and result.reports == ()
    assert result.failure is not None and result.failure.kind is FailureKind.MODEL
    assert result.failure.text.startswith("model raised RuntimeError: boom\n") and "Traceback" in result.failure.text
    assert "inference_ms" not in result.stage_ms


def test_plan_once_rejects_bad_output() -> None:
    result = plan_once(job(frames()), FakeModel(prediction(np.full((1, 64, 3), np.nan))), "first")
    assert result.failure is not None and result.failure.kind is FailureKind.OUTPUT
    assert result.failure.text == "model output rejected: model output contains NaN/Inf"
    assert "inference_ms" in result.stage_ms and "processing_ms" not in result.stage_ms


def test_plan_once_bad_camera_frame_never_reaches_the_model() -> None:
    broken = Image(height=8, width=12, encoding="rgb8", step=36, data=bytes(10))
    model = FakeModel(straight())
    result = plan_once(job(camera_sample(FrameEntry(T0, broken))), model, "first")
    assert result.failure is not None and result.failure.kind is FailureKind.INPUT
    assert result.failure.text.startswith(f"bad camera frame: {CAM} frame {T0}")
    assert model.inputs == [] and result.stage_ms == {"select_ms": 0.0}


# --- settle_result: a finished job's bookkeeping ----------------------------------------------------------------


def _settle(
    result_generation: int, *, failure: str = "", model: bool = False, active: bool = True
) -> tuple[Unpublished | None, PlanningStats, InputIntake]:
    """Settle a real plan_once result (a failing frame when ``failure`` names one) into a fresh intake/stats."""
    intake, stats = InputIntake(), PlanningStats()
    intake.generation = 7
    if failure == "input":
        broken = Image(height=8, width=12, encoding="rgb8", step=36, data=bytes(10))
        result = plan_once(job(camera_sample(FrameEntry(T0, broken))), FakeModel(straight()), "first")
    elif failure == "model":
        result = plan_once(job(frames()), FakeModel(RuntimeError("boom")), "first")
    else:
        result = plan_once(job(frames()), FakeModel(straight()), "first")
    assert result.generation == 7
    result = dataclasses.replace(result, generation=result_generation)
    text = result.failure.text if result.failure is not None else ""
    verdict = settle_result(
        stats, intake, result, failure=text, model_failure=model, has_output=not failure, active=active
    )
    return verdict, stats, intake


def test_settle_result_publishes_a_current_good_plan() -> None:
    verdict, stats, _ = _settle(7)
    assert verdict is None and (stats.discarded, stats.model_failures, stats.sync_failures) == (0, 0, 0)
    assert set(stats.last_stage_ms) == {"select_ms", "images_ms", "inference_ms", "processing_ms"}


def test_settle_result_discards_a_plan_from_before_a_flush_or_after_deactivation() -> None:
    verdict, stats, _ = _settle(6)
    assert verdict == Unpublished("discard", "result discarded: time jumped backwards during inference")
    assert stats.discarded == 1
    verdict, stats, _ = _settle(7, active=False)
    assert verdict == Unpublished("inactive", "") and stats.discarded == 1


def test_settle_result_puts_an_input_failure_on_the_cameras_own_status() -> None:
    verdict, stats, intake = _settle(7, failure="input")
    assert isinstance(verdict, Unpublished) and verdict.key == "worker"
    assert verdict.reason.startswith(f"bad camera frame: {CAM} frame {T0}")
    assert (stats.sync_failures, stats.model_failures) == (1, 0)
    cam = intake.camera_stats[CAM]
    assert cam.rejected == 1 and cam.last_error == verdict.reason and cam.last_error_stamp_ns == T0


def test_settle_result_counts_a_model_failure_as_the_models_only() -> None:
    verdict, stats, intake = _settle(7, failure="model", model=True)
    assert isinstance(verdict, Unpublished) and verdict.reason.startswith("model raised RuntimeError: boom")
    assert (stats.sync_failures, stats.model_failures) == (0, 1)
    assert all(s.rejected == 0 for s in intake.camera_stats.values())


def test_worker_crash_is_counted_and_named() -> None:
    stats = PlanningStats()
    assert worker_crashed(stats, KeyError("x")) == Unpublished("worker", "worker failed: KeyError: 'x'")
    assert stats.model_failures == 1


# --- select_job: the tick's checklist -------------------------------------------------------------------------------

PLANNING = PlanningParams()
EGO = EgoParams()
JUMP = P.NodeParams().sync.backwards_jump_sec


def _odometry(stamp_ns: int, x: float, frame_id: str = "odom") -> Odometry:
    msg = Odometry()
    msg.header.stamp = stamp_from_ns(stamp_ns)
    msg.header.frame_id = frame_id
    msg.pose.pose.position.x = x
    msg.pose.pose.orientation.w = 1.0
    return msg


def _frame(stamp_ns: int) -> Image:
    img = rgb_image(32, 48)
    img.header.stamp = stamp_from_ns(stamp_ns)
    return img


def _fed_intake(t0_ns: int = T0, history_sec: float = 2.0, intake: InputIntake | None = None) -> InputIntake:
    """An intake (new, or ``intake`` fed further) for INFO's one camera with frames at t0 - 0.1 s and t0, and 5 m/s
    odometry at 20 Hz up to t0; every message is taken without a notice."""
    if intake is None:
        intake = InputIntake()
        intake.configure(sync_config(P.NodeParams().sync, INFO), EGO)
    for i in range(int(history_sec * 20) + 1):
        stamp = t0_ns - int(history_sec * 1e9) + i * 50_000_000
        assert intake.add_odometry(_odometry(stamp, 5.0 * (stamp - t0_ns) / 1e9)) == []
    for stamp in (t0_ns - 100_000_000, t0_ns):
        assert intake.add_image(CAM, _frame(stamp)) == []
    return intake


def _select(intake: InputIntake, now_ns: int, stats: PlanningStats, extra: str | None = None) -> PlanJob | Skip:
    return select_job(intake, now_ns, stats, planning=PLANNING, ego=EGO, backwards_jump_sec=JUMP, extra_camera=extra)


def test_select_job_plans_each_anchor_frame_once() -> None:
    intake, stats = _fed_intake(), PlanningStats()
    got = _select(intake, T0 + 20_000_000, stats, extra=CAM)
    assert isinstance(got, PlanJob) and got.t0_ns == T0 and got.generation == intake.generation
    assert got.ego.speed_mps == pytest.approx(5.0) and got.extra_frame is not None
    assert got.extra_frame.stamp_ns == T0
    again = _select(intake, T0 + 120_000_000, stats)
    assert isinstance(again, Skip) and again.kind is SkipKind.NOT_NEW and not again.report
    assert (stats.ticks, stats.no_new_sample, stats.last_planned_t0_ns) == (2, 1, T0)


def test_select_job_reports_a_sync_failure_once_per_anchor_frame() -> None:
    intake, stats = InputIntake(), PlanningStats()
    intake.configure(sync_config(P.NodeParams().sync, INFO), EGO)
    intake.add_image(CAM, _frame(T0))  # the frame at t0 - 0.1 s is missing
    first, second = _select(intake, T0, stats), _select(intake, T0, stats)
    assert isinstance(first, Skip) and first.kind is SkipKind.NO_SAMPLE and first.report
    assert "t0-0.1 s" in first.reason and first.t0_ns == T0
    assert isinstance(second, Skip) and not second.report
    assert stats.sync_failures == 1


def test_select_job_refuses_stale_samples_and_samples_without_history() -> None:
    stats = PlanningStats()
    stale = _select(_fed_intake(), T0 + int(PLANNING.max_sample_age_sec * 1e9) + 1, stats)
    assert isinstance(stale, Skip) and stale.kind is SkipKind.STALE and "max_sample_age_sec" in stale.reason
    short = _select(_fed_intake(history_sec=1.0), T0, PlanningStats())
    assert isinstance(short, Skip) and short.kind is SkipKind.NO_EGO_HISTORY and "ego history" in short.reason
    zero = _select(_fed_intake(), 0, PlanningStats())
    assert isinstance(zero, Skip) and zero.kind is SkipKind.NO_CLOCK


def test_select_job_clock_jumping_back_flushes_the_inputs() -> None:
    """Inputs buffered further ahead of the clock than any input is accepted (max_future_stamp_sec) were taken
    before the clock went back; less far ahead is a clock that lags its inputs and flushes nothing."""
    intake, stats = _fed_intake(), PlanningStats()
    assert isinstance(_select(intake, T0, stats), PlanJob)
    generation = intake.generation
    lagging = T0 - int(intake.limits.max_future_stamp_sec * 1e9)
    assert isinstance(_select(intake, lagging, stats), Skip) and intake.generation == generation
    skipped = _select(intake, lagging - 1, stats)
    assert isinstance(skipped, Skip) and skipped.kind is SkipKind.NO_SAMPLE  # everything was flushed
    assert intake.generation == generation + 1 and stats.last_planned_t0_ns == 0 and len(intake.odometry) == 0
    assert intake.flushes == 1


def test_after_forgetting_the_inputs_a_restarted_timeline_is_a_new_start_not_a_jump_back() -> None:
    """Deactivation, then the same timeline from 10 s earlier (the simulator's next rollout on one node), with the
    node's ticks still on the old clock while the first new inputs arrive: every message is taken (none dropped as a
    stray), nothing is flushed, and the first tick on the new clock plans on the new inputs."""
    intake, stats = _fed_intake(), PlanningStats()
    assert isinstance(_select(intake, T0, stats), PlanJob)
    generation = intake.generation
    intake.forget()
    assert intake.generation == generation + 1 and len(intake.odometry) == 0 and intake.newest_stamp_ns() is None
    assert isinstance(_select(intake, T0 + 20_000_000, stats), Skip)  # a tick before the clock restarted
    restart = T0 - 10_000_000_000
    _fed_intake(restart, intake=intake)
    assert isinstance(_select(intake, T0 + 40_000_000, stats), Skip)  # inputs in before the clock: no plan, no flush
    job = _select(intake, restart + 20_000_000, stats)
    assert isinstance(job, PlanJob) and job.t0_ns == restart and job.generation == intake.generation
    assert intake.flushes == stats.flushes == 0


# --- sync_config --------------------------------------------------------------------------------------------------


def test_sync_config_requires_the_model_cameras_and_covers_its_oldest_frame() -> None:
    prm = P.NodeParams().sync
    config = sync_config(prm, INFO)
    assert config.cameras == CAMERA_NAMES and config.required == INFO.cameras
    assert config.frame_offsets_sec == INFO.frame_offsets_sec and config.anchor == prm.anchor_camera
    assert config.buffer_sec == prm.buffer_sec  # the configured buffer already covers 0.1 s of frames
    deep = ModelInfo("deep", "v", INFO.cameras, (-3.0, 0.0), None)
    config = sync_config(prm, deep)
    assert config.buffer_sec == pytest.approx(3.0 + prm.tolerance_sec + prm.max_anchor_lag_sec + 0.1)
    FrameSynchronizer(config)  # valid as stretched


def test_sync_config_without_frame_offsets_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no frame offsets"):
        FrameSynchronizer(sync_config(P.NodeParams().sync, ModelInfo("none", "v", INFO.cameras, (), None)))
