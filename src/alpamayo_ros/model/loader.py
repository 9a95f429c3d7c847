"""Official-checkpoint loader: safetensors only (single file or shards + index), every key accounted for.

The model is built on the meta device (no random init of ~10B parameters), then each shard's tensors are
converted to the target dtype/device and assigned. Missing, unexpected and shape-mismatched keys are all
collected and reported by name before any weight is read. Non-persistent rotary buffers are recomputed on the
target device. Pickle files are never opened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding, Qwen3VLVisionRotaryEmbedding

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.config import AlpamayoConfig, load_config

LOG = logging.getLogger(__name__)
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
TIED_KEY = "vlm.lm_head.weight"


class CheckpointError(RuntimeError):
    """The checkpoint directory does not match the model built from its config."""


@dataclass(frozen=True)
class LoadReport:
    files: tuple[str, ...]
    num_tensors: int
    num_values: int
    seconds: float
    fingerprint: str  # sha256 prefix of the index (or of the single file's header) for provenance


def checkpoint_files(checkpoint_dir: Path) -> tuple[list[Path], dict[str, str]]:
    """Shard files and key -> file map. Raises CheckpointError when there are no safetensors."""
    index = checkpoint_dir / INDEX_FILE
    if index.is_file():
        weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        files = sorted({checkpoint_dir / name for name in weight_map.values()})
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{INDEX_FILE} names shard files that do not exist: {', '.join(missing)}")
        return files, weight_map
    single = checkpoint_dir / SINGLE_FILE
    if single.is_file():
        with safe_open(str(single), framework="pt") as f:
            keys = list(f.keys())
        return [single], dict.fromkeys(keys, SINGLE_FILE)
    pickles = sorted(p.name for p in checkpoint_dir.glob("*.bin")) + sorted(p.name for p in checkpoint_dir.glob("*.pt"))
    hint = (
        f" (found {', '.join(pickles)}: pickle checkpoints are not loaded, convert to safetensors)" if pickles else ""
    )
    raise CheckpointError(f"no {SINGLE_FILE} or {INDEX_FILE} in {checkpoint_dir}{hint}")


LAYER_KEY = re.compile(r"^(?P<stack>.+)\.layers\.(?P<index>\d+)\.")
# tensor-name prefix of each layer stack -> where its declared count lives
LAYER_STACKS: dict[str, str] = {"vlm.model.language_model": "VLM text", "expert": "expert"}


def check_layer_counts(cfg: AlpamayoConfig, weight_map: dict[str, str]) -> None:
    """The VLM's and the expert's layer counts must be the ones the checkpoint holds (read from tensor names only).

    Raises:
        CheckpointError: a stack with another number of layers than its config declares.
    """
    found: dict[str, set[int]] = {}
    for key in weight_map:
        match = LAYER_KEY.match(key)
        if match is not None and match["stack"] in LAYER_STACKS:
            found.setdefault(match["stack"], set()).add(int(match["index"]))
    declared = {
        "vlm.model.language_model": cfg.text_config.get("num_hidden_layers"),
        "expert": cfg.expert_text_config().get("num_hidden_layers"),
    }
    for stack, indices in found.items():
        want = declared[stack]
        if want is not None and len(indices) != want:
            raise CheckpointError(
                f"config declares {want} {LAYER_STACKS[stack]} layers, the checkpoint holds {len(indices)}"
            )


def _names(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def expected_tensors(model: AlpamayoR1) -> dict[str, tuple[int, ...]]:
    """Persistent state-dict entries the checkpoint must provide (tied lm_head excluded)."""
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model.cfg.tie_word_embeddings:
        shapes.pop(TIED_KEY, None)
    return shapes


def check_keys(model: AlpamayoR1, files: list[Path], weight_map: dict[str, str]) -> None:
    """Compare the checkpoint's keys and shapes with the model's; raise one error naming every problem."""
    expected = expected_tensors(model)
    present: dict[str, tuple[int, ...]] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                present[key] = tuple(f.get_slice(key).get_shape())
    unindexed = sorted(set(present) - set(weight_map))
    missing = sorted(set(expected) - set(present))
    unexpected = sorted(set(present) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {list(present[k])} vs model {list(expected[k])}"
        for k in set(expected) & set(present)
        if present[k] != expected[k]
    )
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_names(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {_names(mismatched)}")
    if unindexed:
        problems.append(f"keys in shards but not in {INDEX_FILE} ({len(unindexed)}): {_names(unindexed)}")
    if problems:
        raise CheckpointError("checkpoint does not match the model config: " + "; ".join(problems))


def materialize_non_persistent(model: AlpamayoR1, device: torch.device) -> None:
    """Recompute the rotary inverse frequencies (not in the state dict) on ``device`` in float32."""
    lm = model.language_model
    lm.rotary_emb = Qwen3VLTextRotaryEmbedding(lm.config, device=device)
    model.expert.rotary_emb = Qwen3VLTextRotaryEmbedding(model.expert.config, device=device)
    visual = model.vlm.model.visual
    head_dim = visual.config.hidden_size // visual.config.num_heads
    with torch.device(device):
        visual.rotary_pos_emb = Qwen3VLVisionRotaryEmbedding(head_dim // 2)


def build_meta_model(cfg: AlpamayoConfig, dtype: torch.dtype = torch.float32) -> AlpamayoR1:
    """The model with every tensor on the meta device in ``dtype`` (no memory, no init time)."""
    with torch.device("meta"):
        model = AlpamayoR1(cfg)
    model.to(dtype=dtype)
    return model


def load_weights(
    model: AlpamayoR1,
    checkpoint_dir: str | Path,
    device: torch.device,
    dtype: torch.dtype,
    progress: Callable[[str], None] | None = None,
) -> LoadReport:
    """Assign every checkpoint tensor (converted to ``dtype``) into a meta-built ``model`` on ``device``."""
    start = time.perf_counter()
    say = progress or LOG.info
    ckpt = Path(checkpoint_dir)
    files, weight_map = checkpoint_files(ckpt)
    check_keys(model, files, weight_map)
    loaded, values = 0, 0
    for i, path in enumerate(files, 1):
        chunk: dict[str, torch.Tensor] = {}
        # read straight onto the GPU when loading there (no host copy of a 4-5 GB shard)
        read_device = f"cuda:{device.index or 0}" if device.type == "cuda" else "cpu"
        with safe_open(str(path), framework="pt", device=read_device) as f:
            for key in f.keys():  # noqa: SIM118
                chunk[key] = f.get_tensor(key).to(device=device, dtype=dtype)
        model.load_state_dict(chunk, strict=False, assign=True)
        loaded += len(chunk)
        values += sum(t.numel() for t in chunk.values())
        say(f"loaded {path.name} ({i}/{len(files)}): {len(chunk)} tensors, {values / 1e9:.2f} B values so far")
        del chunk
    model.tie_embeddings()
    materialize_non_persistent(model, device)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointError(f"tensors left unloaded: {_names(left)}")
    model.eval().requires_grad_(False)
    return LoadReport(
        files=tuple(p.name for p in files),
        num_tensors=loaded,
        num_values=values,
        seconds=time.perf_counter() - start,
        fingerprint=weights_fingerprint(ckpt, files),
    )


FULL_HASH_MAX_BYTES = 1 << 30


def weights_fingerprint(ckpt: Path, files: list[Path]) -> str:
    """12-hex-digit identity of the weights, published as ``model_version`` with every plan.

    Checkpoints up to 1 GiB are hashed whole, so retrained weights of the same architecture get a new identity.
    Larger ones (the 22 GB release) hash the index, every shard's header (names, dtypes, shapes, offsets) and every
    shard's size: hashing 22 GB would add ~10-20 s to each configure, and a release is identified by its layout.
    """
    digest = hashlib.sha256()
    index = ckpt / INDEX_FILE
    if index.is_file():
        digest.update(index.read_bytes())
    if sum(p.stat().st_size for p in files) <= FULL_HASH_MAX_BYTES:
        for path in files:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
    else:
        for path in files:
            with path.open("rb") as handle:
                size = int.from_bytes(handle.read(8), "little")
                digest.update(handle.read(size))
            digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()[:12]


def load_checkpoint(
    checkpoint_dir: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    vlm_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[AlpamayoR1, LoadReport]:
    """Config + meta build + weights: the official directory -> a ready model in eval mode.

    The config's sizes are bounded (``config.validate``) and its layer counts checked against the tensor names in the
    safetensors headers before anything is built: a config that disagrees with its weights fails in milliseconds.
    """
    cfg = load_config(checkpoint_dir, vlm_dir)
    _, weight_map = checkpoint_files(Path(checkpoint_dir))
    check_layer_counts(cfg, weight_map)
    model = build_meta_model(cfg, dtype)
    report = load_weights(model, checkpoint_dir, torch.device(device), dtype, progress)
    return model, report
