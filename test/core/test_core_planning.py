"""One planning cycle without ROS: the output sanity gate's reasons, the warm-up sample, frame decoding and the
output messages built from a job and a prediction (samples, odom path, untrained label, overlay)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from alpamayo_ros.core import params as P
from alpamayo_ros.core.builders import ns_from_stamp
from alpamayo_ros.core.ego_history import EgoHistoryResult, OdomPose
from alpamayo_ros.core.planning import (
    PlanJob,
    build_outputs,
    check_prediction,
    decode_frame,
    run_job,
    sync_config,
    synthetic_input,
)
from alpamayo_ros.core.rig import CAMERA_NAMES, FUTURE_STEPS, HISTORY_STEPS
from alpamayo_ros.core.sync import FrameEntry, FrameSynchronizer, SyncedSample
from alpamayo_ros.core.types import EgoHistory, ModelInfo, ModelInput, Prediction, StageTimings

T0 = 50 * 1_000_000_000 + 123
INFO = ModelInfo("test-policy", "v1", ("camera_front_wide_120fov",), (-0.1, 0.0), None)


def prediction(xyz: np.ndarray, reasoning: tuple[str, ...] | None = None) -> Prediction:
    rot = np.broadcast_to(np.eye(3), (*xyz.shape[:2], 3, 3)).copy()
    n = xyz.shape[0]
    return Prediction(xyz, rot, ("Keep lane.",) * n if reasoning is None else reasoning, (1,) * n, (False,) * n)


def straight(num_samples: int = 1, speed_mps: float = 5.0) -> Prediction:
    x = speed_mps * 0.1 * (np.arange(FUTURE_STEPS) + 1)
    xyz = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1)
    return prediction(np.broadcast_to(xyz, (num_samples, FUTURE_STEPS, 3)).copy())


def rgb_image(height: int = 8, width: int = 12) -> Image:
    img = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    img.data = bytes(np.full((height, width, 3), 7, np.uint8).tobytes())
    return img


def job(
    values: dict[str, object] | None = None,
    overlay: FrameEntry | None = None,
    info: CameraInfo | None = None,
    sample: SyncedSample | None = None,
) -> PlanJob:
    ego = EgoHistoryResult(
        history=synthetic_input(None, (), ()).ego_history,
        t0_pose=OdomPose("odom", np.array([10.0, 0.0, 0.0]), np.eye(3), np.array([0.0, 0.0, 0.0, 1.0])),
        speed_mps=5.0,
    )
    return PlanJob(
        sample=sample or SyncedSample(T0, {}, {}, ()),
        ego=ego,
        generation=7,
        params=P.replace(P.from_values({}), values or {}),
        overlay_entry=overlay,
        camera_info=info,
        select_ms=0.0,
    )


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


# --- build_outputs ------------------------------------------------------------------------------------------------


def test_outputs_stamped_t0_in_the_output_frames() -> None:
    out = build_outputs(INFO, job(), straight())
    assert ns_from_stamp(out.path.header.stamp) == T0 and out.path.header.frame_id == "base_link"
    assert len(out.path.poses) == FUTURE_STEPS
    assert out.path_odom is not None and out.path_odom.header.frame_id == "odom"
    assert out.path_odom.poses[0].pose.position.x == pytest.approx(10.5)  # composed with the t0 pose
    assert len(out.reasoning) == 1 and out.reasoning[0].reasoning_text == "Keep lane."
    assert out.reasoning[0].header == out.path.header
    assert out.sample_paths == () and out.overlay is None
    assert out.agreement == out.reasoning[0].agreement and out.agreement_detail == out.reasoning[0].agreement_detail


def test_samples_published_only_when_asked() -> None:
    pred = straight(3)
    assert len(build_outputs(INFO, job(), pred).reasoning) == 1
    out = build_outputs(INFO, job({"publish_all_samples": True}), pred)
    assert [m.sample_index for m in out.reasoning] == [0, 1, 2]
    assert len(out.sample_paths) == 2


def test_odom_path_optional_and_frame_overridable() -> None:
    assert build_outputs(INFO, job({"output.publish_odom_path": False}), straight()).path_odom is None
    out = build_outputs(INFO, job({"output.odom_frame_id": "map"}), straight())
    assert out.path_odom is not None and out.path_odom.header.frame_id == "map"


def test_untrained_models_say_so_on_the_markers() -> None:
    untrained = ModelInfo("tiny", "v0", INFO.cameras, INFO.frame_offsets_sec, None, untrained=True)
    texts = [m.text for m in build_outputs(untrained, job(), straight()).markers.markers if m.text]
    assert any(t.startswith("[tiny: untrained]") for t in texts)
    texts = [m.text for m in build_outputs(INFO, job(), straight()).markers.markers if m.text]
    assert texts and not any("untrained" in t for t in texts)


def test_overlay_drawn_on_the_overlay_frame_with_or_without_intrinsics() -> None:
    entry = FrameEntry(T0, rgb_image(48, 64), (64, 48))
    assert build_outputs(INFO, job(overlay=entry), straight()).overlay is None  # overlay disabled
    out = build_outputs(INFO, job({"overlay.enabled": True}, overlay=entry), straight())
    assert out.overlay is not None and ns_from_stamp(out.overlay.header.stamp) == T0
    assert out.overlay.encoding == "rgb8" and out.overlay.width == 64
    assert out.overlay.header.frame_id == "camera_front_wide_120fov"  # the camera, not the trajectory's frame
    cam = CameraInfo(width=64, height=48, k=[50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0])
    cam.header.frame_id = "front_wide_optical"
    out = build_outputs(INFO, job({"overlay.enabled": True}, overlay=entry, info=cam), straight())
    assert out.overlay is not None and out.overlay.header.frame_id == "front_wide_optical"
    bad = CameraInfo(width=64, height=48, k=[0.0] * 9)
    with pytest.raises(ValueError, match="not a valid pinhole matrix"):
        build_outputs(INFO, job({"overlay.enabled": True}, overlay=entry, info=bad), straight())


# --- run_job: the worker's cycle ----------------------------------------------------------------------------------

CAM = INFO.cameras[0]


class FakeModel:
    """A DrivingModel that records its input and returns (or raises) what it is given."""

    def __init__(self, result: Prediction | Exception, info: ModelInfo = INFO) -> None:
        self._result, self._info = result, info
        self.inputs: list[ModelInput] = []

    @property
    def info(self) -> ModelInfo:
        return self._info

    def predict(self, sample: ModelInput) -> Prediction:
        self.inputs.append(sample)
        if isinstance(self._result, Exception):
            raise self._result
        return self._result

    def close(self) -> None:
        pass


def camera_sample(*entries: FrameEntry | None) -> SyncedSample:
    return SyncedSample(T0, {CAM: entries}, {}, ())


def frames() -> SyncedSample:
    return camera_sample(FrameEntry(T0 - 100_000_000, rgb_image()), FrameEntry(T0, rgb_image()))


def test_run_job_feeds_the_model_and_returns_outputs() -> None:
    pred = straight()
    pred = Prediction(pred.xyz, pred.rotation, pred.reasoning, (1,), (False,), StageTimings(total_ms=12.5))
    model = FakeModel(pred)
    result = run_job(model, job(sample=frames()))
    assert (result.t0_ns, result.generation, result.failure) == (T0, 7, None)
    assert result.outputs is not None and ns_from_stamp(result.outputs.path.header.stamp) == T0
    assert result.latency is not None and result.latency.total_ms == 12.5
    assert set(result.stage_ms) == {"select_ms", "images_ms", "inference_ms", "build_ms", "processing_ms"}
    (given,) = model.inputs
    assert given.t0_ns == T0 and given.frame_offsets_sec == INFO.frame_offsets_sec
    assert given.images[CAM].shape == (2, 8, 12, 3)


def test_run_job_model_exception_is_a_failure_with_traceback() -> None:
    result = run_job(FakeModel(RuntimeError("boom")), job(sample=frames()))
    assert result.outputs is None and result.latency is None
    assert result.failure is not None and result.failure.startswith("model raised RuntimeError: boom\n")
    assert "Traceback" in result.failure
    assert "inference_ms" not in result.stage_ms


def test_run_job_rejects_bad_output() -> None:
    result = run_job(FakeModel(prediction(np.full((1, 64, 3), np.nan))), job(sample=frames()))
    assert result.failure == "model output rejected: model output contains NaN/Inf"
    assert "inference_ms" in result.stage_ms and "build_ms" not in result.stage_ms


def test_run_job_bad_camera_frame_never_reaches_the_model() -> None:
    broken = Image(height=8, width=12, encoding="rgb8", step=36, data=bytes(10))
    model = FakeModel(straight())
    result = run_job(model, job(sample=camera_sample(FrameEntry(T0, broken))))
    assert result.failure is not None and result.failure.startswith(f"bad camera frame: {CAM} frame {T0}")
    assert model.inputs == [] and result.stage_ms == {"select_ms": 0.0}


def test_run_job_output_build_failure() -> None:
    bad_cam = CameraInfo(width=64, height=48, k=[0.0] * 9)
    overlay = FrameEntry(T0, rgb_image(48, 64))
    result = run_job(FakeModel(straight()), job({"overlay.enabled": True}, overlay, bad_cam, frames()))
    assert result.failure is not None and result.failure.startswith("could not build outputs: camera intrinsics")


# --- sync_config --------------------------------------------------------------------------------------------------


def test_sync_config_requires_the_model_cameras_and_covers_its_oldest_frame() -> None:
    prm = P.from_values({})
    config = sync_config(prm, INFO)
    assert config.cameras == CAMERA_NAMES and config.required == INFO.cameras
    assert config.frame_offsets_sec == INFO.frame_offsets_sec and config.anchor == prm.sync_anchor_camera
    assert config.buffer_sec == prm.sync_buffer_sec  # the configured buffer already covers 0.1 s of frames
    deep = ModelInfo("deep", "v", INFO.cameras, (-3.0, 0.0), None)
    config = sync_config(prm, deep)
    assert config.buffer_sec == pytest.approx(3.0 + prm.sync_tolerance_sec + prm.sync_max_anchor_lag_sec + 0.1)
    FrameSynchronizer(config)  # valid as stretched


def test_sync_config_without_frame_offsets_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        sync_config(P.from_values({}), ModelInfo("none", "v", INFO.cameras, (), None))
