"""Training samples from the scenario generator, cached to disk as one npz per (scenario, seed, duration).

A sample is what the node would hand the model at a camera tick t0 (every camera at the model's frame offsets,
resized by the model's own processor rule; 16 ego poses at 10 Hz in the t0 frame) plus the supervision: the
reference Chain-of-Causation text (``labels.make_label``) and the ego's future 64 poses, turned into the action
space's accel/curvature by ``traj_to_action`` (stored unnormalised; the statistics are measured on the training
set and written into the checkpoint's action-space config).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from alpamayo_ros.core.rig import CAMERA_NAMES, FUTURE_STEPS, HISTORY_STEPS, STEP_SEC
from alpamayo_ros.core.types import EgoHistory, ModelInput
from alpamayo_ros.model.action_space import UnicycleAccelCurvatureActionSpace, yaw_rotation
from alpamayo_ros.model.config import ActionSpaceConfig
from alpamayo_ros.model.processor import _resize_uint8

if TYPE_CHECKING:
    from alpamayo_ros.sim.distributions import Value

# Accel/curvature without normalisation (mean 0, std 1): traj_to_action then returns physical units.
RAW_ACTION_SPACE = ActionSpaceConfig(curvature_bounds=(-0.2, 0.2))


@dataclass(frozen=True)
class DataSpec:
    """What to render; part of the cache key."""

    image_hw: tuple[int, int] = (64, 128)
    render_wh: tuple[int, int] = (256, 144)  # rendered 16:9, then resized like a 1080p frame would be
    frame_offsets_sec: tuple[float, ...] = (0.0,)
    tick_stride: int = 4


@dataclass(frozen=True)
class Episode:
    scenario: str
    seed: int
    seconds: float
    distribution: str = "default"  # sim.distributions: the scene parameters are drawn from this one
    # Scene parameters fixed by name, as ``synth --set`` fixes them: sorted (axis name, value) pairs.
    overrides: tuple[tuple[str, Value], ...] = ()


@dataclass
class EpisodeData:
    """Arrays of one episode's samples (N of them)."""

    images: np.ndarray  # (N, cameras, T, h, w, 3) uint8
    hist_xyz: np.ndarray  # (N, 16, 3) float32, t0 frame
    hist_yaw: np.ndarray  # (N, 16) float32
    future: np.ndarray  # (N, 64, 3) x, y, yaw in the t0 frame
    actions: np.ndarray  # (N, 64, 2) accel (m/s^2), curvature (1/m)
    speed: np.ndarray  # (N,) m/s at t0
    lon: np.ndarray  # (N,) reference longitudinal decision
    lat: np.ndarray  # (N,) reference lateral decision
    texts: list[str]


def cache_key(spec: DataSpec, ep: Episode) -> str:
    from alpamayo_ros.sim.fingerprint import generator_fingerprint

    described = asdict(ep)
    if not ep.overrides:  # a plain draw keys on its distribution alone: existing caches of plain draws stay valid
        del described["overrides"]
    blob = json.dumps([asdict(spec), described, generator_fingerprint()], sort_keys=True).encode()
    return f"{ep.scenario}_s{ep.seed}_{ep.seconds:g}s_{hashlib.sha256(blob).hexdigest()[:10]}"


def _to_t0(x: np.ndarray, y: np.ndarray, yaw: np.ndarray, i0: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(yaw[i0]), math.sin(yaw[i0])
    dx, dy = x[idx] - x[i0], y[idx] - y[i0]
    xyz = np.stack([c * dx + s * dy, -s * dx + c * dy, np.zeros_like(dx)], axis=1)
    return xyz.astype(np.float32), (yaw[idx] - yaw[i0]).astype(np.float32)


def raw_actions(hist_xyz: np.ndarray, hist_yaw: np.ndarray, future: np.ndarray) -> np.ndarray:
    """(N, 64, 2) accel / curvature in physical units via the action space's own ``traj_to_action``."""
    space = UnicycleAccelCurvatureActionSpace(RAW_ACTION_SPACE).double()
    hx = torch.from_numpy(hist_xyz).double()
    hr = yaw_rotation(torch.from_numpy(hist_yaw).double())
    fx = torch.from_numpy(np.concatenate([future[..., :2], np.zeros_like(future[..., :1])], axis=-1)).double()
    fr = yaw_rotation(torch.from_numpy(future[..., 2]).double())
    return space.traj_to_action(hx, hr, fx, fr).float().numpy()  # type: ignore[no-any-return]


def render_episode(spec: DataSpec, ep: Episode) -> EpisodeData:
    """Simulate an episode and render the sampled ticks (every ``tick_stride``-th, after 1.5 s of history)."""
    from alpamayo_ros.sim import generate
    from alpamayo_ros.sim.planner import CAMERA_EVERY
    from alpamayo_ros.sim.render import Renderer

    gen = generate(
        ep.scenario, ep.seed, ep.seconds, *spec.render_wh, distribution=ep.distribution, overrides=dict(ep.overrides)
    )
    renderer = Renderer(gen.scenario, gen.cameras)
    tr = gen.track
    frame_steps = [round(off / STEP_SEC) for off in spec.frame_offsets_sec]
    first = HISTORY_STEPS - 1 - min(0, *frame_steps)
    phase = ep.seed % spec.tick_stride
    ticks = list(range(first + phase, gen.num_ticks, spec.tick_stride))
    rendered: dict[int, np.ndarray] = {}

    def frames(k: int) -> np.ndarray:
        if k not in rendered:
            i = k * CAMERA_EVERY
            imgs = renderer.render(float(tr.t[i]), float(tr.x[i]), float(tr.y[i]), float(tr.yaw[i]))
            x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2)
            rendered[k] = _resize_uint8(x, spec.image_hw).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return rendered[k]

    images, hxyz, hyaw, fut, speed, lon, lat, texts = [], [], [], [], [], [], [], []
    for k in ticks:
        i = k * CAMERA_EVERY
        images.append(np.stack([frames(k + d) for d in frame_steps], axis=1))  # (cams, T, h, w, 3)
        idx = np.array([(k - HISTORY_STEPS + 1 + j) * CAMERA_EVERY for j in range(HISTORY_STEPS)])
        xyz, yaw = _to_t0(tr.x, tr.y, tr.yaw, i, idx)
        hxyz.append(xyz)
        hyaw.append(yaw)
        fut.append(tr.future_in_ego_frame(float(tr.t[i]), FUTURE_STEPS, STEP_SEC).astype(np.float32))
        speed.append(float(tr.v[i]))
        label = gen.label_at(i)
        lon.append(int(label.longitudinal))
        lat.append(int(label.lateral))
        texts.append(label.text)
        for old in [key for key in rendered if key < k + min(frame_steps)]:
            del rendered[old]
    hist_xyz, hist_yaw, future = np.stack(hxyz), np.stack(hyaw), np.stack(fut)
    return EpisodeData(
        images=np.stack(images),
        hist_xyz=hist_xyz,
        hist_yaw=hist_yaw,
        future=future,
        actions=raw_actions(hist_xyz, hist_yaw, future),
        speed=np.asarray(speed, dtype=np.float32),
        lon=np.asarray(lon, dtype=np.int64),
        lat=np.asarray(lat, dtype=np.int64),
        texts=texts,
    )


def save_episode(path: Path, data: EpisodeData) -> None:
    """Write atomically: a temporary file of this process, then a rename (two trainings may share a cache)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(
        tmp,
        images=data.images,
        hist_xyz=data.hist_xyz,
        hist_yaw=data.hist_yaw,
        future=data.future,
        actions=data.actions,
        speed=data.speed,
        lon=data.lon,
        lat=data.lat,
        texts=np.asarray(data.texts),
    )
    tmp.replace(path)


def load_episode(path: Path) -> EpisodeData:
    with np.load(path) as z:
        return EpisodeData(
            images=z["images"],
            hist_xyz=z["hist_xyz"],
            hist_yaw=z["hist_yaw"],
            future=z["future"],
            actions=z["actions"],
            speed=z["speed"],
            lon=z["lon"],
            lat=z["lat"],
            texts=[str(t) for t in z["texts"]],
        )


def _build_one(args: tuple[DataSpec, Episode, str]) -> str:
    spec, ep, path = args
    torch.set_num_threads(1)
    save_episode(Path(path), render_episode(spec, ep))
    return path


def build_cache(
    spec: DataSpec, episodes: Sequence[Episode], cache_dir: Path, workers: int = 1, progress: bool = True
) -> list[Path]:
    """Render every episode not already cached (``workers`` processes); returns the npz paths in order."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = [cache_dir / f"{cache_key(spec, ep)}.npz" for ep in episodes]
    todo = [(spec, ep, str(p)) for ep, p in zip(episodes, paths, strict=True) if not p.is_file()]
    if todo:
        bar = tqdm(total=len(todo), unit="episode", desc="render training data", disable=not progress)
        if workers <= 1:
            for job in todo:
                _build_one(job)
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(_build_one, todo):
                    bar.update(1)
        bar.close()
    return paths


@dataclass
class SampleSet:
    """All cached samples concatenated (one uint8 image block, so a batch is a fancy-index away)."""

    images: np.ndarray
    hist_xyz: np.ndarray
    hist_yaw: np.ndarray
    future: np.ndarray
    actions: np.ndarray
    speed: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    texts: list[str]
    scenario: list[str]

    def __len__(self) -> int:
        return len(self.texts)


# Every per-sample array of an episode file except the images, which load_samples reads in a pass of their own.
_SMALL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EpisodeData) if f.name not in ("images", "texts"))


def load_samples(
    paths: Sequence[Path], episodes: Sequence[Episode], keep: Callable[[str], bool] | None = None
) -> SampleSet:
    """The samples of the episode files ``paths`` (one ``episodes`` entry each), concatenated.

    keep: whether to keep a sample, from its reference reasoning (None: all of them).

    The image block is most of the memory (7 cameras x 64 x 128 x 3 bytes a frame, 172 kB a sample), so it is
    allocated once and filled episode by episode: concatenating whole episodes would hold every image twice at the
    peak, which is what decides how many episodes fit in a machine's memory. A first pass reads everything but the
    images (which samples to keep, and so the block's size); a second reads the images into the block.
    """
    small: dict[str, list[np.ndarray]] = {name: [] for name in _SMALL_FIELDS}
    masks: list[np.ndarray] = []
    texts: list[str] = []
    scen: list[str] = []
    for path, ep in zip(paths, episodes, strict=True):
        with np.load(path) as z:
            episode_texts = [str(t) for t in z["texts"]]
            mask = np.asarray([keep is None or keep(t) for t in episode_texts], dtype=bool)
            for name, parts in small.items():
                parts.append(z[name][mask])
        masks.append(mask)
        texts.extend(t for t, kept in zip(episode_texts, mask, strict=True) if kept)
        scen.extend([ep.scenario] * int(mask.sum()))
    images: np.ndarray | None = None
    at = 0
    for path, mask in zip(paths, masks, strict=True):
        with np.load(path) as z:
            kept_images = z["images"][mask]
        if images is None:
            images = np.empty((len(texts), *kept_images.shape[1:]), dtype=kept_images.dtype)
        images[at : at + len(kept_images)] = kept_images
        at += len(kept_images)
    if images is None:
        raise ValueError("load_samples: no episode files given")

    def joined(name: str) -> np.ndarray:
        return np.concatenate(small[name])

    return SampleSet(
        images=images,
        hist_xyz=joined("hist_xyz"),
        hist_yaw=joined("hist_yaw"),
        future=joined("future"),
        actions=joined("actions"),
        speed=joined("speed"),
        lon=joined("lon"),
        lat=joined("lat"),
        texts=texts,
        scenario=scen,
    )


def episodes(
    scenarios: Sequence[str],
    seeds: Sequence[int],
    durations: Sequence[float],
    distribution: str = "default",
    overrides: dict[str, Value] | None = None,
) -> list[Episode]:
    """Every (scenario, seed) with a duration cycling through ``durations`` (event timing scales with it).

    overrides: scene parameters fixed in every episode (checked values, as ``sim.parse_overrides`` returns them)."""
    fixed = tuple(sorted((overrides or {}).items()))
    out = []
    for name in scenarios:
        for j, seed in enumerate(seeds):
            out.append(Episode(name, seed, float(durations[j % len(durations)]), distribution, fixed))
    return out


def iter_batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless shuffled index batches (reshuffled each epoch, last partial batch dropped)."""
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i : i + batch_size]


CAMERAS = CAMERA_NAMES


# Scenarios scored by ADE get twice the seeds (training.recipe: seeds_target against seeds_other).
TARGET_SCENARIOS: tuple[str, ...] = ("lead_vehicle_braking", "pedestrian_crossing", "red_light_stop_line")
TRAIN_DURATIONS_SEC: tuple[float, ...] = (14.0, 16.0, 18.0, 22.0)  # evaluation uses 20 s: an unseen timing
VAL_SEEDS: tuple[int, ...] = (900, 901)


def training_episodes(
    seeds_target: int, seeds_other: int, distributions: Sequence[str] = ("default",)
) -> list[Episode]:
    """The training plan: seeds 0.. per scenario (held-out seeds for validation/evaluation are >= 900), once per
    scenario distribution in ``distributions`` (a mixture repeats the plan with the other distribution's scenes).

    The seed counts and the distributions come from the training recipe (training.recipe.Recipe).
    """
    from alpamayo_ros.sim import SCENARIOS

    out: list[Episode] = []
    for distribution in distributions:
        for name in SCENARIOS:
            n = seeds_target if name in TARGET_SCENARIOS else seeds_other
            out += episodes([name], range(n), TRAIN_DURATIONS_SEC, distribution)
    return out


def validation_episodes(distributions: Sequence[str] = ("default",)) -> list[Episode]:
    """Every scenario on the validation seeds, once per distribution trained on."""
    from alpamayo_ros.sim import SCENARIOS

    return [ep for d in distributions for ep in episodes(SCENARIOS, VAL_SEEDS, (20.0,), d)]


def sample_input(model: Any, data: SampleSet, i: int, images_of: int | None = None) -> ModelInput:
    """The ``ModelInput`` of rendered sample ``i`` for ``model`` (its cameras and frame offsets); ``images_of`` takes
    the camera frames from another sample. The history comes straight from the simulation (t0 ego frame)."""
    src = i if images_of is None else images_of
    images = {cam: data.images[src, CAMERA_NAMES.index(cam)] for cam in model.info.cameras}
    rot = yaw_rotation(torch.from_numpy(data.hist_yaw[i])).numpy()
    hist = EgoHistory(data.hist_xyz[i], rot, np.linspace(-(HISTORY_STEPS - 1) * STEP_SEC, 0.0, HISTORY_STEPS))
    return ModelInput(t0_ns=i, images=images, frame_offsets_sec=model.info.frame_offsets_sec, ego_history=hist)
