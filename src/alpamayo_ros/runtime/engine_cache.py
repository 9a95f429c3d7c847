"""TensorRT engine cache: keys, manifests and validation. Pure Python (no tensorrt import), unit-tested anywhere.

An engine is only valid for the exact ONNX graph, TensorRT version, GPU architecture, precision (the engine's and
the parsed graph's), network typing and input shapes it was built for. Each of those goes into the key; a cached
engine is reused only if its manifest matches the key, its file hash matches the one recorded at build time (a
truncated or swapped file is never deserialized), and its I/O tensors match what the runtime expects. Every
rejection says why, so the caller can log "rebuilding because ..." — engines are never rebuilt silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "fp8")
TYPINGS: tuple[str, ...] = ("strong", "weak")
MANIFEST_VERSION = 2


class EngineCacheError(RuntimeError):
    """A cache entry is unusable (the message says which file and why)."""


@dataclass(frozen=True)
class TensorSpec:
    """One engine input or output: name, static shape, dtype name (numpy-style, e.g. 'float16', 'bfloat16')."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def describe(self) -> str:
        return f"{self.name}{list(self.shape)}:{self.dtype}"


@dataclass(frozen=True)
class EngineKey:
    """Everything that invalidates an engine."""

    subnet: str  # e.g. "vision", "expert_step"
    onnx_sha256: str
    tensorrt_version: str
    compute_capability: str  # e.g. "9.0" (H100/H200)
    precision: str  # one of PRECISIONS
    graph_precision: str  # the parsed ONNX graph's precision (= precision when strongly typed, fp32 when weak)
    typing: str  # strong | weak (TensorRT network typing)
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...]  # sorted by name

    def __post_init__(self) -> None:
        for field_name, value in (("precision", self.precision), ("graph_precision", self.graph_precision)):
            if value not in PRECISIONS:
                raise ValueError(f"{field_name} {value!r} is not one of {', '.join(PRECISIONS)}")
        if self.typing not in TYPINGS:
            raise ValueError(f"typing {self.typing!r} is not one of {', '.join(TYPINGS)}")
        if self.precision == "fp8" and _capability_tuple(self.compute_capability) < (8, 9):
            raise ValueError(f"fp8 needs compute capability >= 8.9 (Ada/Hopper), got {self.compute_capability}")

    def digest(self) -> str:
        """Stable 16-hex-digit identity of the key (file names use it)."""
        canonical = json.dumps(_key_dict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def differences(self, other: EngineKey) -> list[str]:
        """Human-readable list of the fields that differ (empty when equal)."""
        mine, theirs = _key_dict(self), _key_dict(other)
        return [
            f"{name}: cached {theirs[name]!r}, wanted {mine[name]!r}" for name in mine if mine[name] != theirs[name]
        ]


@dataclass(frozen=True)
class Manifest:
    """What the cache records beside each engine file."""

    key: EngineKey
    engine_sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    build_seconds: float = 0.0
    built_at_unix: float = field(default_factory=time.time)


def _capability_tuple(capability: str) -> tuple[int, int]:
    try:
        major, minor = capability.split(".")
        return int(major), int(minor)
    except ValueError:
        raise ValueError(f"compute capability must look like '9.0', got {capability!r}") from None


def _key_dict(key: EngineKey) -> dict[str, object]:
    data = asdict(key)
    data["input_shapes"] = [[name, list(shape)] for name, shape in key.input_shapes]
    return data


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Streaming SHA-256 (engines and ONNX files can be GBs)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def io_mismatches(expected: Sequence[TensorSpec], actual: Sequence[TensorSpec]) -> list[str]:
    """Differences between the I/O a runtime expects and what an engine declares (empty when compatible)."""
    problems: list[str] = []
    want = {spec.name: spec for spec in expected}
    have = {spec.name: spec for spec in actual}
    problems += [f"missing tensor {want[name].describe()}" for name in want if name not in have]
    problems += [f"unexpected tensor {have[name].describe()}" for name in have if name not in want]
    for name in want.keys() & have.keys():
        w, h = want[name], have[name]
        if w.shape != h.shape:
            problems.append(f"tensor {name}: shape {list(h.shape)}, expected {list(w.shape)}")
        if w.dtype != h.dtype:
            problems.append(f"tensor {name}: dtype {h.dtype}, expected {w.dtype}")
    return sorted(problems)


def _spec_from_json(item: dict[str, object]) -> TensorSpec:
    shape = item["shape"]
    assert isinstance(shape, list)
    return TensorSpec(name=str(item["name"]), shape=tuple(int(v) for v in shape), dtype=str(item["dtype"]))


class EngineCache:
    """A folder of `<subnet>-<keydigest>.engine` files, each with a `.json` manifest."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def engine_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.subnet}-{key.digest()}.engine"

    def manifest_path(self, key: EngineKey) -> Path:
        return self.engine_path(key).with_suffix(".json")

    def lookup(
        self, key: EngineKey, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
    ) -> tuple[Path | None, str]:
        """(engine path, "") when a valid engine exists; (None, reason to rebuild) otherwise."""
        engine, manifest_file = self.engine_path(key), self.manifest_path(key)
        if not engine.exists() or not manifest_file.exists():
            others = sorted(p.name for p in self.root.glob(f"{key.subnet}-*.engine")) if self.root.exists() else []
            hint = f" (other {key.subnet} engines present: {', '.join(others)})" if others else ""
            return None, f"no cached {key.subnet} engine for key {key.digest()}{hint}"
        try:
            manifest = self.read_manifest(manifest_file)
        except EngineCacheError as exc:
            return None, str(exc)
        if manifest.key != key:
            return None, f"manifest {manifest_file.name} is for another key: " + "; ".join(
                key.differences(manifest.key)
            )
        actual_hash = sha256_file(engine)
        if actual_hash != manifest.engine_sha256:
            return None, (
                f"{engine.name} hash {actual_hash[:12]} does not match the recorded {manifest.engine_sha256[:12]} "
                "(truncated or replaced file)"
            )
        problems = io_mismatches(inputs, manifest.inputs) + io_mismatches(outputs, manifest.outputs)
        if problems:
            return None, f"{engine.name} I/O differs from the runtime's: " + "; ".join(problems)
        return engine, ""

    def store(self, manifest: Manifest, engine_bytes: bytes) -> Path:
        """Write engine + manifest atomically (a crash mid-write leaves no half engine behind a valid manifest)."""
        self.root.mkdir(parents=True, exist_ok=True)
        engine = self.engine_path(manifest.key)
        _atomic_write(engine, engine_bytes)
        body = {
            "manifest_version": MANIFEST_VERSION,
            "key": _key_dict(manifest.key),
            "engine_sha256": manifest.engine_sha256,
            "inputs": [asdict(s) | {"shape": list(s.shape)} for s in manifest.inputs],
            "outputs": [asdict(s) | {"shape": list(s.shape)} for s in manifest.outputs],
            "build_seconds": manifest.build_seconds,
            "built_at_unix": manifest.built_at_unix,
        }
        _atomic_write(self.manifest_path(manifest.key), json.dumps(body, indent=2).encode())
        return engine

    @staticmethod
    def read_manifest(path: Path) -> Manifest:
        try:
            body = json.loads(path.read_text())
            if body.get("manifest_version") != MANIFEST_VERSION:
                raise EngineCacheError(
                    f"{path.name}: manifest version {body.get('manifest_version')!r}, expected {MANIFEST_VERSION}"
                )
            k = body["key"]
            key = EngineKey(
                subnet=k["subnet"],
                onnx_sha256=k["onnx_sha256"],
                tensorrt_version=k["tensorrt_version"],
                compute_capability=k["compute_capability"],
                precision=k["precision"],
                graph_precision=k["graph_precision"],
                typing=k["typing"],
                input_shapes=tuple((str(n), tuple(int(v) for v in s)) for n, s in k["input_shapes"]),
            )
            return Manifest(
                key=key,
                engine_sha256=str(body["engine_sha256"]),
                inputs=tuple(_spec_from_json(i) for i in body["inputs"]),
                outputs=tuple(_spec_from_json(o) for o in body["outputs"]),
                build_seconds=float(body.get("build_seconds", 0.0)),
                built_at_unix=float(body.get("built_at_unix", 0.0)),
            )
        except EngineCacheError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
            raise EngineCacheError(f"{path.name}: unreadable manifest ({type(exc).__name__}: {exc})") from exc


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
