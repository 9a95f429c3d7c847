"""Camera synchronisation policy: anchor t0, nearest-within-tolerance, skip/hold/black, stamps gone wrong."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.core.images import CorruptImageError
from alpamayo_ros.core.sync import (
    FrameEntry,
    FrameSynchronizer,
    ImageAssemblyError,
    SyncConfig,
    SyncedSample,
    SyncFailure,
    SyncParams,
    assemble_images,
)
from alpamayo_ros.core.types import BufferOutcome

MS = 1_000_000
CAMS = ("a", "b", "c")


def make(policy: str = "skip", required: tuple[str, ...] = ("a", "b")) -> FrameSynchronizer:
    return FrameSynchronizer(
        SyncConfig(
            cameras=CAMS,
            required=required,
            frame_offsets_sec=(-0.3, -0.2, -0.1, 0.0),
            params=SyncParams(
                anchor_camera="a",
                tolerance_sec=0.05,
                missing_camera_policy=policy,
                buffer_sec=1.0,
                max_anchor_lag_sec=0.1,
                backwards_jump_sec=0.5,
            ),
        )
    )


def feed(
    sync: FrameSynchronizer,
    cams: tuple[str, ...],
    start_ms: int,
    end_ms: int,
    *,
    every_ms: int = 100,
    jitter_ms: dict[str, int] | None = None,
) -> None:
    for t in range(start_ms, end_ms + 1, every_ms):
        for cam in cams:
            stamp = (t + (jitter_ms or {}).get(cam, 0)) * MS
            sync.add(cam, FrameEntry(stamp, np.full((4, 6, 3), t % 256, np.uint8), (6, 4)))


def test_complete_sample_at_newest_anchor() -> None:
    sync = make()
    feed(sync, CAMS, 1000, 2000, jitter_ms={"b": 7, "c": -12})
    sample = sync.select()
    assert isinstance(sample, SyncedSample)
    assert sample.t0_ns == 2000 * MS
    stamps = [e.stamp_ns // MS for e in sample.frames["b"] if e is not None]
    assert stamps == [1707, 1807, 1907, 2007]
    assert sample.filled == {} and sample.warnings == ()
    assert set(sample.frames) == {"a", "b"}  # only the model's cameras are assembled


def test_slow_camera_falls_back_to_previous_anchor() -> None:
    sync = make()
    feed(sync, CAMS, 1000, 2000)
    sync.add("a", FrameEntry(2100 * MS, None))  # b's 2100 frame still in flight
    sample = sync.select()
    assert isinstance(sample, SyncedSample) and sample.t0_ns == 2000 * MS


def test_camera_out_of_tolerance_fails_with_reason() -> None:
    sync = make()
    feed(sync, ("a", "c"), 1000, 2000)
    feed(sync, ("b",), 1000, 2000, jitter_ms={"b": -200})  # 200 ms out of sync
    result = sync.select()
    assert isinstance(result, SyncFailure)
    assert result.t0_ns == 2000 * MS
    assert [p.camera for p in result.problems] == ["b"]
    assert "nearest frame is 100 ms before t0" in result.problems[0].reason
    assert "tolerance 50 ms" in result.summary()


def test_missing_camera_and_no_anchor() -> None:
    sync = make()
    assert isinstance(sync.select(), SyncFailure)
    assert "anchor" in sync.select().problems[0].reason  # type: ignore[union-attr]
    feed(sync, ("a",), 1000, 2000)
    result = sync.select()
    assert isinstance(result, SyncFailure) and result.problems[0].reason == "no frames received"


def test_unused_camera_only_warns() -> None:
    sync = make()
    feed(sync, ("a", "b"), 1000, 2000)
    sample = sync.select()
    assert isinstance(sample, SyncedSample)
    assert [w.camera for w in sample.warnings] == ["c"]


def test_hold_and_black_fill_policies() -> None:
    for policy in ("hold", "black"):
        sync = make(policy)
        feed(sync, ("a",), 1000, 2000)
        feed(sync, ("b",), 1000, 1500)  # b stopped 500 ms ago
        sample = sync.select()
        assert isinstance(sample, SyncedSample), policy
        assert "b" in sample.filled and "nearest frame" in sample.filled["b"]
        if policy == "hold":
            assert all(e is not None and e.stamp_ns == 1500 * MS for e in sample.frames["b"])
        else:
            assert all(e is None for e in sample.frames["b"])
            images = assemble_images(sample, lambda p: p, (4, 6))
            assert images["b"].shape == (4, 4, 6, 3) and not images["b"].any()


def test_duplicate_out_of_order_too_old_and_backwards_jump() -> None:
    sync = make()
    assert sync.add("a", FrameEntry(1000 * MS, None)) is BufferOutcome.ADDED
    assert sync.add("a", FrameEntry(1000 * MS, None)) is BufferOutcome.DUPLICATE
    assert sync.add("a", FrameEntry(1200 * MS, None)) is BufferOutcome.ADDED
    assert sync.add("a", FrameEntry(1100 * MS, None)) is BufferOutcome.OUT_OF_ORDER
    assert sync.newest_stamp_ns("a") == 1200 * MS
    sync.add("b", FrameEntry(1200 * MS, None))
    assert len(sync) == 4
    assert sync.add("a", FrameEntry(200 * MS, None)) is BufferOutcome.TIME_JUMPED_BACK
    assert len(sync) == 1, "a backwards jump flushes every camera"
    assert sync.newest_stamp_ns("b") is None


def test_buffer_is_pruned_by_age() -> None:
    sync = make()
    feed(sync, ("a",), 0, 5000, every_ms=50)
    assert len(sync) <= 21


def test_out_of_order_frames_still_sync() -> None:
    sync = make()
    for t in (1000, 1200, 1100, 1400, 1300, 1600, 1500, 1700):
        for cam in ("a", "b"):
            sync.add(cam, FrameEntry(t * MS, None))
    sample = sync.select()
    assert isinstance(sample, SyncedSample) and sample.t0_ns == 1700 * MS


def test_unusable_frame_is_reported_by_select() -> None:
    sync = make()
    feed(sync, ("a", "b"), 1000, 2000)
    sync.add("b", FrameEntry(2100 * MS, None, error="unsupported image encoding '32FC1'"))
    sync.add("a", FrameEntry(2100 * MS, None))
    result = sync.select()
    # newest anchor fails on the bad frame; the previous anchor is complete
    assert isinstance(result, SyncedSample) and result.t0_ns == 2000 * MS
    sync.add("a", FrameEntry(2200 * MS, None))
    sync.add("b", FrameEntry(2200 * MS, None))
    result = sync.select()
    assert isinstance(result, SyncFailure)
    assert "32FC1" in result.summary()


def test_assembly_decodes_once_and_remembers_errors() -> None:
    sync = make()
    feed(sync, ("a", "b"), 1000, 2000)
    sample = sync.select()
    assert isinstance(sample, SyncedSample)
    calls: list[int] = []

    def decode(payload: np.ndarray) -> np.ndarray:
        calls.append(1)
        return payload

    images = assemble_images(sample, decode, None)
    assert images["a"].shape == (4, 4, 6, 3)
    assert images["a"][-1, 0, 0, 0] == 2000 % 256
    assemble_images(sample, decode, None)
    assert len(calls) == 8, "each frame decoded once"

    def broken(payload: np.ndarray) -> np.ndarray:
        raise CorruptImageError("compressed image (jpeg, 88 B) does not decode")

    sync.add("a", FrameEntry(2100 * MS, None))
    sync.add("b", FrameEntry(2100 * MS, None))
    sample = sync.select()
    assert isinstance(sample, SyncedSample)
    with pytest.raises(ImageAssemblyError, match="does not decode"):
        assemble_images(sample, broken, None)
    # the failure is remembered on the frame: later samples that contain it fail in select, no second decode
    assert isinstance(sync.select(), SyncedSample)  # the previous anchor (2000) does not contain it
    sync.add("a", FrameEntry(2200 * MS, None))
    sync.add("b", FrameEntry(2200 * MS, None))
    again = sync.select()
    assert isinstance(again, SyncFailure) and "does not decode" in again.summary()


def test_size_change_within_a_sample_is_refused() -> None:
    sync = make()
    feed(sync, ("a", "b"), 1000, 1900)
    sync.add("a", FrameEntry(2000 * MS, np.zeros((4, 6, 3), np.uint8)))
    sync.add("b", FrameEntry(2000 * MS, np.zeros((8, 12, 3), np.uint8)))
    sample = sync.select()
    assert isinstance(sample, SyncedSample)
    with pytest.raises(ImageAssemblyError, match=r"image size changed within one sample \(6x4 -> 12x8\)"):
        assemble_images(sample, lambda p: p, None)
    # with a model input size every frame is resized: no mix
    images = assemble_images(sample, lambda p: p, (8, 8))
    assert images["b"].shape == (4, 8, 8, 3)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="anchor camera 'x'"):
        SyncConfig(CAMS, ("a",), (0.0,), SyncParams(anchor_camera="x")).validate()
    with pytest.raises(ValueError, match=r"cameras \['z'\]"):
        SyncConfig(CAMS, ("z",), (0.0,), SyncParams(anchor_camera="a")).validate()
    with pytest.raises(ValueError, match="'wait'"):
        SyncConfig(CAMS, ("a",), (0.0,), SyncParams(anchor_camera="a", missing_camera_policy="wait")).validate()
    with pytest.raises(ValueError, match=r"frame offsets must be <= 0 s"):
        SyncConfig(CAMS, ("a",), (0.1,), SyncParams(anchor_camera="a")).validate()


def test_the_buffer_always_holds_the_oldest_frame_the_model_reads() -> None:
    config = SyncConfig(CAMS, ("a",), (-0.3, 0.0), SyncParams(anchor_camera="a", buffer_sec=0.2))
    assert config.buffer_sec == pytest.approx(0.3 + 0.05 + 0.1 + 0.1)
