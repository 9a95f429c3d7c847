"""The node's message builder: one checked prediction -> Path, odom Path, per-sample Paths, ChainOfCausation,
markers and overlay, per the parameters; and the worker's whole cycle (plan, then build) failing cleanly."""

from __future__ import annotations

import math

import pytest
from sensor_msgs.msg import CameraInfo

from alpamayo_ros.core import params as P
from alpamayo_ros.core.builders import ns_from_stamp
from alpamayo_ros.core.decisions import check_consistency
from alpamayo_ros.core.rig import FUTURE_STEPS
from alpamayo_ros.core.sync import FrameEntry
from alpamayo_ros.core.types import ModelInfo, Prediction
from alpamayo_ros.nodes.plan_messages import PlanMessages, build_plan_messages, plan_and_build

from plan_samples import INFO, T0, FakeModel, fan, job, prediction, rgb_image, straight


def build(
    pred: Prediction,
    values: dict[str, object] | None = None,
    *,
    info: ModelInfo = INFO,
    overlay: FrameEntry | None = None,
    camera_info: CameraInfo | None = None,
) -> PlanMessages:
    reports = tuple(check_consistency(pred.reasoning[i], pred.xyz[i], 5.0) for i in range(pred.num_samples))
    params = P.replace(P.NodeParams(), values or {})
    return build_plan_messages(info, params, job(extra=overlay), pred, reports, camera_info=camera_info)


def test_outputs_stamped_t0_in_the_output_frames() -> None:
    out = build(straight())
    assert ns_from_stamp(out.path.header.stamp) == T0 and out.path.header.frame_id == "base_link"
    assert len(out.path.poses) == FUTURE_STEPS
    assert out.path_odom is not None and out.path_odom.header.frame_id == "odom"
    assert out.path_odom.poses[0].pose.position.x == pytest.approx(10.5)  # composed with the t0 pose
    assert len(out.reasoning) == 1 and out.reasoning[0].reasoning_text == "Keep lane."
    assert out.reasoning[0].header == out.path.header
    assert out.sample_paths == () and out.overlay is None
    assert (
        int(out.agreement) == out.reasoning[0].agreement and out.agreement_detail == out.reasoning[0].agreement_detail
    )


def test_samples_published_only_when_asked() -> None:
    pred = straight(3)
    assert len(build(pred).reasoning) == 1
    out = build(pred, {"publish_all_samples": True})
    assert [m.sample_index for m in out.reasoning] == [0, 1, 2]
    assert len(out.sample_paths) == 2


def test_the_samples_spread_around_the_plan_goes_out_with_it() -> None:
    assert math.isnan(build(straight()).spread_m)  # one sample: nothing to compare
    assert build(straight(3)).spread_m == 0.0
    pred = straight(2)
    pred.xyz[1, :, 1] += 1.5  # the second sample runs 1.5 m to the left of the plan all along
    assert build(pred).spread_m == pytest.approx(1.5)


def test_odom_path_optional_and_frame_overridable() -> None:
    assert build(straight(), {"output.publish_odom_path": False}).path_odom is None
    out = build(straight(), {"output.odom_frame_id": "map"})
    assert out.path_odom is not None and out.path_odom.header.frame_id == "map"


def test_untrained_models_say_so_on_the_markers() -> None:
    untrained = ModelInfo("tiny", "v0", INFO.cameras, INFO.frame_offsets_sec, None, untrained=True)
    texts = [m.text for m in build(straight(), info=untrained).markers.markers if m.text]
    assert any(t.startswith("[tiny: untrained]") for t in texts)
    texts = [m.text for m in build(straight()).markers.markers if m.text]
    assert texts and not any("untrained" in t for t in texts)


def test_marker_style_follows_the_output_parameters() -> None:
    out = build(straight(), {"output.marker_lifetime_sec": 2.5, "output.marker_z_offset_m": 1.0})
    line = out.markers.markers[0]
    assert (line.lifetime.sec, line.lifetime.nanosec) == (2, 500_000_000) and line.pose.position.z == 1.0


def test_overlay_drawn_on_the_overlay_frame_with_or_without_intrinsics() -> None:
    entry = FrameEntry(T0, rgb_image(48, 64), (64, 48))
    assert build(straight(), overlay=entry).overlay is None  # overlay disabled
    out = build(straight(), {"overlay.enabled": True}, overlay=entry)
    assert out.overlay is not None and ns_from_stamp(out.overlay.header.stamp) == T0
    assert out.overlay.encoding == "rgb8" and out.overlay.width == 64
    assert out.overlay.header.frame_id == "camera_front_wide_120fov"  # the camera, not the trajectory's frame
    cam = CameraInfo(width=64, height=48, k=[50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0])
    cam.header.frame_id = "front_wide_optical"
    out = build(straight(), {"overlay.enabled": True}, overlay=entry, camera_info=cam)
    assert out.overlay is not None and out.overlay.header.frame_id == "front_wide_optical"
    bad = CameraInfo(width=64, height=48, k=[0.0] * 9)
    with pytest.raises(ValueError, match="not a valid pinhole matrix"):
        build(straight(), {"overlay.enabled": True}, overlay=entry, camera_info=bad)


def test_worker_cycle_publishes_or_says_why_not() -> None:
    params = P.NodeParams()
    done = plan_and_build(FakeModel(straight()), job(), params, None)
    assert done.messages is not None and done.failure == "" and not done.model_failure
    assert {"build_ms", "processing_ms"} <= set(done.result.stage_ms)
    raised = plan_and_build(FakeModel(RuntimeError("boom")), job(), params, None)
    assert raised.messages is None and raised.model_failure and raised.failure.startswith("model raised")
    overlay = P.replace(params, {"overlay.enabled": True})
    bad_cam = CameraInfo(width=64, height=48, k=[0.0] * 9)
    unbuilt = plan_and_build(FakeModel(straight()), job(extra=FrameEntry(T0, rgb_image(48, 64))), overlay, bad_cam)
    assert unbuilt.messages is None and not unbuilt.model_failure
    assert unbuilt.failure.startswith("could not build outputs: camera intrinsics")


def test_the_published_path_is_the_sample_plan_choice_picks() -> None:
    """Three samples ending 6, 0 and 2 m to the left: the node's default plans on the middle one (2 m); ``first``
    keeps the first draw. The Path and the ChainOfCausation stay a matched pair either way."""
    pred = prediction(fan([6.0, 0.0, 2.0], speed_mps=5.0), ("Turn left.", "Keep lane.", "Nudge left."))
    for choice, end_y, text in (("medoid", 2.0, "Nudge left."), ("first", 6.0, "Turn left.")):
        params = P.replace(P.NodeParams(), {"plan_choice": choice})
        done = plan_and_build(FakeModel(pred), job(), params, None)
        assert done.messages is not None
        assert done.messages.path.poses[-1].pose.position.y == pytest.approx(end_y)
        assert done.messages.reasoning[0].reasoning_text == text
