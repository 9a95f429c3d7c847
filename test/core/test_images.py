"""Image conversion: views (no copies) for raw encodings, row stride, decode of JPEG/PNG, typed errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from alpamayo_ros.core.images import (
    CorruptImageError,
    UnsupportedEncodingError,
    compressed_to_rgb,
    encode_rgb8,
    raw_to_rgb,
    resize_rgb,
)


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (6, 10, 3), dtype=np.uint8)


def test_rgb8_is_a_view_of_the_buffer(rgb: np.ndarray) -> None:
    buf = bytearray(rgb.tobytes())
    out = raw_to_rgb("rgb8", 6, 10, 30, buf)
    np.testing.assert_array_equal(out, rgb)
    buf[0] = (int(buf[0]) + 1) % 256
    assert out[0, 0, 0] == buf[0], "expected a view, got a copy"


def test_bgr8_reverses_channels_without_copy(rgb: np.ndarray) -> None:
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    buf = bytearray(bgr.tobytes())
    out = raw_to_rgb("bgr8", 6, 10, 30, buf)
    np.testing.assert_array_equal(out, rgb)
    assert np.shares_memory(out, np.frombuffer(buf, np.uint8))


@pytest.mark.parametrize(("encoding", "channels"), [("rgba8", 4), ("bgra8", 4)])
def test_four_channel_encodings(rgb: np.ndarray, encoding: str, channels: int) -> None:
    alpha = np.full((6, 10, 1), 7, np.uint8)
    src = np.concatenate([rgb if encoding == "rgba8" else rgb[:, :, ::-1], alpha], axis=2)
    out = raw_to_rgb(encoding, 6, 10, 10 * channels, src.tobytes())
    np.testing.assert_array_equal(out, rgb)


def test_mono8_broadcasts_grey() -> None:
    grey = np.arange(60, dtype=np.uint8).reshape(6, 10)
    out = raw_to_rgb("mono8", 6, 10, 10, grey.tobytes())
    assert out.shape == (6, 10, 3)
    np.testing.assert_array_equal(out[:, :, 0], grey)
    np.testing.assert_array_equal(out[:, :, 2], grey)


def test_row_stride_padding_is_skipped(rgb: np.ndarray) -> None:
    step = 10 * 3 + 6  # 6 padding bytes per row
    padded = np.zeros((6, step), np.uint8)
    padded[:, :30] = rgb.reshape(6, 30)
    out = raw_to_rgb("rgb8", 6, 10, step, padded.tobytes())
    np.testing.assert_array_equal(out, rgb)


def test_unsupported_encoding_names_it() -> None:
    with pytest.raises(UnsupportedEncodingError, match="'32FC1'"):
        raw_to_rgb("32FC1", 2, 2, 8, bytes(32))
    with pytest.raises(UnsupportedEncodingError, match="'yuv422'"):
        raw_to_rgb("yuv422", 2, 2, 4, bytes(8))


def test_short_buffer_and_bad_step() -> None:
    with pytest.raises(CorruptImageError, match="needs 180 B, got 100 B"):
        raw_to_rgb("rgb8", 6, 10, 30, bytes(100))
    with pytest.raises(CorruptImageError, match="row step 20"):
        raw_to_rgb("rgb8", 6, 10, 20, bytes(180))
    with pytest.raises(CorruptImageError, match="empty"):
        raw_to_rgb("rgb8", 0, 10, 30, b"")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_compressed_decodes_to_rgb(rgb: np.ndarray, ext: str) -> None:
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:] = (200, 40, 10)  # RGB
    ok, buf = cv2.imencode(ext, flat[:, :, ::-1])
    assert ok
    out = compressed_to_rgb("jpeg" if ext == ".jpg" else "png", buf.tobytes())
    assert out.shape == (16, 16, 3)
    np.testing.assert_allclose(out[8, 8].astype(int), (200, 40, 10), atol=4)


def test_corrupt_and_unsupported_compressed() -> None:
    with pytest.raises(CorruptImageError, match="does not decode"):
        compressed_to_rgb("jpeg", b"\xff\xd8\xff garbage")
    with pytest.raises(CorruptImageError, match="no data"):
        compressed_to_rgb("jpeg", b"")
    with pytest.raises(UnsupportedEncodingError, match="'h264'"):
        compressed_to_rgb("h264", b"\x00\x00\x01")


def test_resize_keeps_colours_of_a_bgr_view() -> None:
    bgr = np.zeros((40, 60, 3), np.uint8)
    bgr[:] = (10, 20, 200)
    view = raw_to_rgb("bgr8", 40, 60, 180, bgr.tobytes())
    small = resize_rgb(view, (20, 30))
    assert small.shape == (20, 30, 3)
    np.testing.assert_array_equal(small[5, 5], (200, 20, 10))
    assert resize_rgb(view, None) is view
    assert resize_rgb(view, (40, 60)) is view
    assert resize_rgb(view, (80, 120)).shape == (80, 120, 3)


def test_encode_rgb8_round_trip(rgb: np.ndarray) -> None:
    h, w, step, data = encode_rgb8(rgb[:, ::-1])
    assert (h, w, step) == (6, 10, 30)
    np.testing.assert_array_equal(raw_to_rgb("rgb8", h, w, step, data), rgb[:, ::-1])


def test_a_compressed_frame_cut_after_its_headers_is_refused_on_arrival() -> None:
    from alpamayo_ros.core.images import compressed_size

    rgb = (np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)
    for fmt in ("jpeg", "png"):
        ok, encoded = cv2.imencode(f".{fmt.replace('jpeg', 'jpg')}", rgb)
        assert ok
        whole = encoded.tobytes()
        assert compressed_size(fmt, whole) == (64, 48)
        assert compressed_size(fmt, whole + bytes(16)) == (64, 48)  # zero padding after the end marker
        with pytest.raises(CorruptImageError, match=rf"compressed image \({fmt}, \d+ B\) is truncated"):
            compressed_size(fmt, whole[: len(whole) * 2 // 3])
