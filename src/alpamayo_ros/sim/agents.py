"""Reactive road users for the closed loop: scripted vehicles that also keep their distance to the ego.

In the open-loop world (world.py) every actor is a pure function of time. In closed loop the ego goes where its
driver sends it, so a vehicle whose lane the ego enters ahead of it must not drive through it. Each moving vehicle
(the lead car, oncoming cars) therefore follows the Intelligent Driver Model's interaction law behind its script:

    a = min(a_script + SPEED_GAIN * (|v_script| - |v|),  A_MAX * (1 - (s_star / gap)^2)),
    s_star = MIN_GAP + max(0, |v| * HEADWAY + |v| * (|v| - v_ego) / (2 * sqrt(A_MAX * B_COMF)))

The script is the free-road behaviour (it already says when the lead car brakes, so IDM's own free-road term
(v / v0)^4 is left out), the interaction term is IDM's (Treiber, Hennecke, Helbing 2000) with nuPlan's IDM-agent
parameters (idm_agents config: accel_max 1.0 m/s^2, decel_max 2.0 m/s^2, headway_time 1.5 s,
min_gap_to_lead_agent 1.0 m). The only leader an agent considers is the ego, when the ego's box overlaps its lane
band ahead of it: among themselves agents keep their scripts, exactly as in the open-loop world. An agent that has
never been held up IS its script (closed form, no integration drift); once IDM binds it integrates its own state,
and the speed term brings it back to the script's speed when the ego is gone. Parked cars, pedestrians (crossing
scripts) and the traffic light keep their scripts.
Units: metres, seconds, m/s, m/s^2; (s, d) are Frenet coordinates of road.py; v along the road (oncoming: < 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from alpamayo_ros.sim.world import Actor, Motion, Scenario, _advance

A_MAX = 1.0
B_COMF = 2.0
HEADWAY_S = 1.5
MIN_GAP_M = 1.0
SPEED_GAIN = 0.5  # 1/s: how fast a held-up agent returns to its script's speed
A_MIN = -8.0  # physical braking limit of an agent (m/s^2)
LANE_MARGIN_M = 0.3  # lateral slack when deciding whether the ego is in an agent's lane band
SUBSTEP_S = 0.01


@dataclass(frozen=True)
class EgoFootprint:
    """The ego as agents see it: its box's extent along the road (m), centre offset (m), half width, speed (m/s)."""

    s_rear_m: float
    s_front_m: float
    d_m: float
    half_width_m: float
    v_along_mps: float  # speed along the road direction (+ with the ego lane)


@dataclass(frozen=True)
class LiveMotion(Motion):
    """A motion pinned to a state (s, v, a) at time t_ref and extrapolated at constant acceleration from there
    (a braking actor stops and stays stopped); keeps the script's v0_mps so parked/moving stays as scripted."""

    t_ref_s: float = 0.0
    s_ref_m: float = 0.0
    v_ref_mps: float = 0.0
    a_ref_mps2: float = 0.0

    def state(self, t: float) -> tuple[float, float, float]:
        s, v = _advance(self.s_ref_m, self.v_ref_mps, self.a_ref_mps2, max(0.0, t - self.t_ref_s))
        return s, v, (self.a_ref_mps2 if v != 0.0 else 0.0)


class _Agent:
    """One actor's live state."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.reactive = actor.kind == "vehicle" and actor.motion.v0_mps != 0.0
        self.held_up = False
        self.s, self.v, self.a = actor.motion.state(0.0)

    def sync(self, t: float) -> None:
        if not self.held_up:
            self.s, self.v, self.a = self.actor.motion.state(t)

    def gap_to_ego(self, t: float, ego: EgoFootprint) -> tuple[float, float] | None:
        """(gap m, ego speed along this agent's direction m/s) when the ego is ahead of it in its lane band."""
        if abs(ego.d_m - self.actor.d_of_t(t)) > self.actor.size_m[1] / 2 + ego.half_width_m + LANE_MARGIN_M:
            return None
        half = self.actor.size_m[0] / 2
        ego_centre = 0.5 * (ego.s_rear_m + ego.s_front_m)
        if self.actor.heading_rel_rad == 0.0:
            if ego_centre <= self.s:  # the ego is behind it: not its leader (a rear-end hit does not make it brake)
                return None
            return ego.s_rear_m - (self.s + half), ego.v_along_mps
        if ego_centre >= self.s:  # oncoming, driving towards -s
            return None
        return (self.s - half) - ego.s_front_m, -ego.v_along_mps

    def step(self, t: float, dt: float, ego: EgoFootprint) -> None:
        """Advance from t to t + dt with the ego held where it is at t."""
        if not self.reactive:
            return
        direction = 1.0 if self.actor.heading_rel_rad == 0.0 else -1.0
        n = max(1, round(dt / SUBSTEP_S))
        h = dt / n
        for k in range(n):
            tk = t + k * h
            _, v_sc, a_sc = self.actor.motion.state(tk)
            if not self.held_up:
                self.sync(tk)
            speed = abs(self.v)
            a_script = a_sc * direction + (SPEED_GAIN * (abs(v_sc) - speed) if self.held_up else 0.0)
            leader = self.gap_to_ego(tk, ego)
            a_follow = math.inf
            if leader is not None:
                gap, v_leader = max(leader[0], 0.1), leader[1]
                s_star = MIN_GAP_M + max(
                    0.0, speed * HEADWAY_S + speed * (speed - v_leader) / (2.0 * math.sqrt(A_MAX * B_COMF))
                )
                a_follow = A_MAX * (1.0 - (s_star / gap) ** 2)
            if not self.held_up and a_follow >= a_script:
                continue
            self.held_up = True  # from here on this agent integrates its own state
            accel = max(min(a_script, a_follow), A_MIN)
            new_speed = max(0.0, speed + accel * h)
            self.s += direction * 0.5 * (speed + new_speed) * h
            self.v = direction * new_speed
            self.a = direction * accel if new_speed > 0.0 else 0.0

    def live_actor(self, t: float) -> Actor:
        if not self.held_up:
            return self.actor
        m = self.actor.motion
        return replace(
            self.actor,
            motion=LiveMotion(m.s0_m, m.v0_mps, m.phases, t, self.s, self.v, self.a),
        )


class ReactiveAgents:
    """The scenario's actors, live: step() them along with the ego, read them back as Actors (renderer, planner)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._agents = [_Agent(actor) for actor in scenario.actors]
        self.t_s = 0.0

    def step(self, t: float, dt: float, ego: EgoFootprint) -> None:
        """Advance every agent from time t to t + dt, reacting to the ego as it is at t."""
        for agent in self._agents:
            agent.step(t, dt, ego)
        self.t_s = t + dt
        for agent in self._agents:
            agent.sync(self.t_s)

    def actors(self) -> list[Actor]:
        """Actors whose state(t) is exact at the current time (and extrapolated beyond it for held-up ones)."""
        return [agent.live_actor(self.t_s) for agent in self._agents]

    def held_up(self) -> list[str]:
        """Names of the agents that have had to react to the ego so far."""
        return [agent.actor.name for agent in self._agents if agent.held_up]

    def live_scenario(self) -> Scenario:
        """The scenario with its actors replaced by the live ones (what a privileged planner sees now)."""
        return replace(self.scenario, actors=self.actors())
