"""Closed-loop training samples (DAgger): the states a driver reaches by itself, labelled by the expert planner.

Open-loop training shows the driver only the states the expert's own drive passes through. Once a plan of its own
drifts (a bend read into a straight road), the driver stands where no training sample ever stood and has no example
of how to get back. DAgger (Ross, Gordon and Bagnell, 2011) closes that gap: let the learner drive, and label every
state it reaches with what the expert would do from there.

``ExpertRelabeller`` watches a ``sim.closed_loop.ClosedLoopWorld`` tick by tick while any driver drives it. Every
``DataSpec.tick_stride``-th engaged tick becomes one sample in the format of ``training.data.EpisodeData``:

- images: the camera frames the driver saw at that tick (and at the spec's earlier frame offsets), resized as the
  rendered training samples are;
- ego history: the ego's actual poses over the last 1.5 s (10 Hz), in the ego frame at t0;
- future and actions: ``ExpertDriver``'s plan from the ego's actual state (the scenario's planner, privileged, with
  the live agents), 64 poses in the ego frame at t0;
- reasoning: the reference label (``sim.labels.make_label``) of that plan, with the same rules as the open-loop
  labels, plus the one only a driver of its own needs: strayed from the lane, it says so and names the way back.

So a recipe's ``closed_loop_data`` trains on these beside the rendered episodes, through the same collate and loss.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alpamayo_ros.core.decisions import trajectory_facts
from alpamayo_ros.core.rig import FUTURE_STEPS, HISTORY_STEPS, STEP_SEC
from alpamayo_ros.model.processor import _resize_uint8
from alpamayo_ros.sim.closed_loop import TICK_S, ClosedLoopWorld, ExpertDriver, Observation, to_ego_frame
from alpamayo_ros.sim.generate import upcoming_constraint
from alpamayo_ros.sim.labels import make_label
from alpamayo_ros.sim.planner import SIM_DT
from alpamayo_ros.sim.planner import plan as decide
from alpamayo_ros.training.data import DataSpec, EpisodeData, raw_actions

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


class ClosedLoopDataError(ValueError):
    """A closed-loop data directory is missing, unreadable or made for another model size; names the directory."""


class ExpertRelabeller:
    """Turns the ticks of one closed-loop rollout into expert-labelled samples; call ``observe`` every tick, before
    the world steps (``tools.sim_loop.drive_with_node``'s ``on_observation``)."""

    def __init__(self, world: ClosedLoopWorld, spec: DataSpec) -> None:
        if world.renderer is None:
            raise ValueError("closed-loop samples need the camera frames: build the world with render=True")
        self.world = world
        self.spec = spec
        self.expert = ExpertDriver(world)
        self._offsets = [round(off / STEP_SEC) for off in spec.frame_offsets_sec]
        self._frames: dict[int, np.ndarray] = {}  # tick -> (cameras, h, w, 3) uint8 at the model's size
        self._first = max(round(world.warmup_s / TICK_S), HISTORY_STEPS - 1 - min(0, *self._offsets))
        self._rows: list[dict[str, Any]] = []

    def observe(self, obs: Observation) -> None:
        """Keep this tick's frames for later samples; make a sample when the tick is one of the sampled ones."""
        self._frames[obs.tick] = self._resized(obs.images)
        if obs.tick >= self._first and (obs.tick - self._first) % self.spec.tick_stride == 0:
            self._rows.append(self._sample(obs))
        oldest_needed = obs.tick + 1 + min(self._offsets)  # the next tick's earliest frame
        for tick in [k for k in self._frames if k < oldest_needed]:
            del self._frames[tick]

    def _resized(self, images: tuple[np.ndarray, ...]) -> np.ndarray:
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        return _resize_uint8(x, self.spec.image_hw).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # type: ignore[no-any-return]

    def _sample(self, obs: Observation) -> dict[str, Any]:
        world, st = self.world, self.world.vehicle.state
        past = world.records[obs.tick - HISTORY_STEPS + 1 :]
        xs = np.array([*(r.x for r in past), st.x])
        ys = np.array([*(r.y for r in past), st.y])
        yaws = np.array([*(r.yaw for r in past), st.yaw])
        history = to_ego_frame(st, xs, ys, yaws)
        live, track = self.expert.track(obs)
        idx = np.arange(1, FUTURE_STEPS + 1) * round(STEP_SEC / SIM_DT)
        future = to_ego_frame(st, track.x[idx], track.y[idx], track.yaw[idx])
        s, d = world.ego_frenet()
        ctx = decide(live, obs.t_s, s, d, st.v_mps)
        facts = trajectory_facts(future[:, :2], st.v_mps)
        label = make_label(ctx, st.v_mps, facts, upcoming_constraint(live, track, 0), lane_offset_m=d - ctx.d_target)
        return {
            "images": np.stack([self._frames[obs.tick + off] for off in self._offsets], axis=1),
            "hist_xyz": np.column_stack([history[:, :2], np.zeros(HISTORY_STEPS)]).astype(np.float32),
            "hist_yaw": history[:, 2].astype(np.float32),
            "future": future.astype(np.float32),
            "speed": st.v_mps,
            "lon": int(label.longitudinal),
            "lat": int(label.lateral),
            "text": label.text,
        }

    def episode(self) -> EpisodeData | None:
        """The samples so far (None before the first sampled tick)."""
        if not self._rows:
            return None
        rows = self._rows
        hist_xyz = np.stack([r["hist_xyz"] for r in rows])
        hist_yaw = np.stack([r["hist_yaw"] for r in rows])
        future = np.stack([r["future"] for r in rows])
        return EpisodeData(
            images=np.stack([r["images"] for r in rows]),
            hist_xyz=hist_xyz,
            hist_yaw=hist_yaw,
            future=future,
            actions=raw_actions(hist_xyz, hist_yaw, future),
            speed=np.asarray([r["speed"] for r in rows], dtype=np.float32),
            lon=np.asarray([r["lon"] for r in rows], dtype=np.int64),
            lat=np.asarray([r["lat"] for r in rows], dtype=np.int64),
            texts=[r["text"] for r in rows],
        )


@dataclass(frozen=True)
class CollectedEpisode:
    """One rollout's entry in a data directory's manifest."""

    file: str  # npz in the directory (training.data format)
    scenario: str
    seed: int
    distribution: str
    seconds: float
    samples: int
    passed: bool  # the driver met the scenario's success conditions (sim.metrics)
    failures: tuple[str, ...]  # the failure kinds, first one first


def sample_format(spec: DataSpec) -> dict[str, Any]:
    """``spec`` as a manifest records it (plain JSON values), so a manifest's ``data`` compares equal to it."""
    return json.loads(json.dumps(asdict(spec)))  # type: ignore[no-any-return]


def write_manifest(directory: Path, driver: dict[str, Any], spec: DataSpec, episodes: list[CollectedEpisode]) -> None:
    """(Re)write ``directory``/manifest.json: who drove, the sample format and every rollout collected so far."""
    from alpamayo_ros.sim.fingerprint import generator_fingerprint

    body = {
        "format": MANIFEST_FORMAT,
        "driver": driver,
        "data": sample_format(spec),
        "generator": generator_fingerprint(),
        "episodes": [asdict(ep) for ep in episodes],
    }
    tmp = directory / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    tmp.replace(directory / MANIFEST)


def read_manifest(directory: Path) -> tuple[dict[str, Any], list[CollectedEpisode]]:
    """The manifest's header (driver, data, generator) and its episodes.

    Raises:
        ClosedLoopDataError: no manifest, unreadable JSON, another format, or an entry that is not an episode.
    """
    path = directory / MANIFEST
    if not path.is_file():
        raise ClosedLoopDataError(
            f"closed-loop data {directory}: no {MANIFEST} (collect it first with `alpamayo-ros collect --out "
            f"{directory}`)"
        )
    try:
        body = json.loads(path.read_text())
        if body.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {body.get('format')!r}, expected {MANIFEST_FORMAT}")
        episodes = [CollectedEpisode(**{**ep, "failures": tuple(ep["failures"])}) for ep in body["episodes"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ClosedLoopDataError(f"closed-loop data {directory}: unreadable {MANIFEST} ({exc})") from None
    return body, episodes


@dataclass(frozen=True)
class ClosedLoopData:
    """A checked closed-loop data directory: who drove and its npz files with their manifest entries."""

    directory: Path
    driver: dict[str, Any]
    files: tuple[tuple[Path, CollectedEpisode], ...]

    @property
    def samples(self) -> int:
        return sum(ep.samples for _, ep in self.files)

    def summary(self) -> dict[str, Any]:
        """For a trained checkpoint's provenance."""
        passed = sum(ep.passed for _, ep in self.files)
        return {"driver": self.driver, "rollouts": len(self.files), "passed": passed, "samples": self.samples}


def open_closed_loop_data(directory: Path, spec: DataSpec) -> ClosedLoopData:
    """A data directory, checked against the sample format ``spec`` training uses.

    Raises:
        ClosedLoopDataError: see ``read_manifest``; samples of another image size, frame offsets or stride; a file
            the manifest lists but the directory lacks.
    """
    body, episodes = read_manifest(directory)
    made = body.get("data", {})
    wanted = sample_format(spec)
    if made != wanted:
        differs = ", ".join(f"{k} {made.get(k)} (training needs {v})" for k, v in wanted.items() if made.get(k) != v)
        raise ClosedLoopDataError(
            f"closed-loop data {directory}: collected for another model size: {differs}; collect it again with "
            "the recipe that trains on it (`alpamayo-ros collect --recipe ...`)"
        )
    files = []
    for ep in episodes:
        path = directory / ep.file
        if not path.is_file():
            raise ClosedLoopDataError(f"closed-loop data {directory}: {ep.file} is listed but missing")
        files.append((path, ep))
    return ClosedLoopData(directory, dict(body.get("driver", {})), tuple(files))
