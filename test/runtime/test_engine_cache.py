"""Engine cache keys, manifests and validation: the TensorRT-free half of engine management."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from alpamayo_ros.runtime.engine_cache import (
    EngineCache,
    EngineCacheError,
    EngineKey,
    Manifest,
    TensorSpec,
    io_mismatches,
    sha256_file,
)

INPUTS = (TensorSpec("pixel_values", (11520, 1536), "bfloat16"), TensorSpec("grid_thw", (16, 3), "int64"))
OUTPUTS = (TensorSpec("image_embeds", (2880, 4096), "bfloat16"),)


def make_key(**changes: object) -> EngineKey:
    key = EngineKey(
        subnet="vision",
        onnx_sha256="a" * 64,
        tensorrt_version="10.13.0",
        compute_capability="9.0",
        precision="bf16",
        graph_precision="bf16",
        typing="strong",
        input_shapes=(("grid_thw", (16, 3)), ("pixel_values", (11520, 1536))),
    )
    return replace(key, **changes)  # type: ignore[arg-type]


def store(cache: EngineCache, key: EngineKey, payload: bytes = b"engine-bytes") -> Path:
    manifest = Manifest(key=key, engine_sha256=_sha(payload), inputs=INPUTS, outputs=OUTPUTS, build_seconds=1.5)
    return cache.store(manifest, payload)


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "field,value",
    [
        ("onnx_sha256", "b" * 64),
        ("tensorrt_version", "10.14.1"),
        ("compute_capability", "8.9"),
        ("precision", "fp16"),
        ("graph_precision", "fp32"),
        ("typing", "weak"),
        ("input_shapes", (("grid_thw", (8, 3)), ("pixel_values", (5760, 1536)))),
    ],
)
def test_every_invalidating_field_changes_the_digest(field: str, value: object) -> None:
    assert make_key(**{field: value}).digest() != make_key().digest()
    assert make_key().digest() == make_key().digest()  # stable


def test_fp8_needs_ada_or_hopper() -> None:
    make_key(precision="fp8", compute_capability="9.0")
    with pytest.raises(ValueError, match=r"fp8 needs compute capability >= 8.9.*8\.0"):
        make_key(precision="fp8", compute_capability="8.0")
    with pytest.raises(ValueError, match="precision 'int4'"):
        make_key(precision="int4")
    with pytest.raises(ValueError, match="graph_precision 'int8'"):
        make_key(graph_precision="int8")
    with pytest.raises(ValueError, match="typing 'loose'"):
        make_key(typing="loose")


def test_store_then_lookup_hits(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    path = store(cache, make_key())
    found, reason = cache.lookup(make_key(), INPUTS, OUTPUTS)
    assert (found, reason) == (path, "")
    assert cache.read_manifest(cache.manifest_path(make_key())).build_seconds == 1.5
    assert sha256_file(path) == _sha(b"engine-bytes")


def test_missing_engine_names_the_others_present(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    store(cache, make_key(precision="fp16"))
    found, reason = cache.lookup(make_key(), INPUTS, OUTPUTS)
    assert found is None
    assert "no cached vision engine" in reason and f"vision-{make_key(precision='fp16').digest()}" in reason


def test_tampered_engine_is_never_used(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    path = store(cache, make_key())
    path.write_bytes(b"engine-byte")  # truncated
    found, reason = cache.lookup(make_key(), INPUTS, OUTPUTS)
    assert found is None and "does not match the recorded" in reason


def test_manifest_for_another_key_is_rejected_with_the_differences(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    store(cache, make_key())
    manifest_file = cache.manifest_path(make_key())
    body = json.loads(manifest_file.read_text())
    body["key"]["tensorrt_version"] = "9.9.9"
    manifest_file.write_text(json.dumps(body))
    found, reason = cache.lookup(make_key(), INPUTS, OUTPUTS)
    assert found is None and "tensorrt_version: cached '9.9.9', wanted '10.13.0'" in reason


def test_io_mismatch_is_reported(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    store(cache, make_key())
    wanted = (TensorSpec("pixel_values", (11520, 1536), "float16"), TensorSpec("mask", (1,), "bool"))
    found, reason = cache.lookup(make_key(), wanted, OUTPUTS)
    assert found is None
    assert "pixel_values: dtype bfloat16, expected float16" in reason
    assert "missing tensor mask[1]:bool" in reason and "unexpected tensor grid_thw[16, 3]:int64" in reason


def test_io_mismatches_empty_when_equal() -> None:
    assert io_mismatches(INPUTS, tuple(reversed(INPUTS))) == []


def test_corrupt_manifest_raises_named_error(tmp_path: Path) -> None:
    bad = tmp_path / "vision-0.json"
    bad.write_text("{not json")
    with pytest.raises(EngineCacheError, match=r"vision-0.json: unreadable manifest"):
        EngineCache.read_manifest(bad)
    # A corrupt manifest under the wanted key is a rebuild reason, not a crash.
    cache = EngineCache(tmp_path)
    store(cache, make_key())
    cache.manifest_path(make_key()).write_text("{not json")
    found, reason = cache.lookup(make_key(), INPUTS, OUTPUTS)
    assert found is None and "unreadable manifest" in reason


def test_store_leaves_no_temp_files(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    store(cache, make_key())
    assert sorted(p.suffix for p in (tmp_path / "engines").iterdir()) == [".engine", ".json"]
