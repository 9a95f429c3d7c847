"""A two-lane road as a chain of constant-curvature segments, with Frenet <-> world conversion.

World frame ("odom"): x east, y north, z up, metres; the road starts at the origin heading +x. Frenet coordinates:
s = arc length along the ego lane's centreline, d = lateral offset (+ left). The ego drives in the right lane
(d = 0); the oncoming lane is centred at d = +LANE_WIDTH_M.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from alpamayo_ros.core.types import FloatArray

LANE_WIDTH_M = 3.5
SAMPLE_M = 0.05  # centreline sampling; linear interpolation error ~ kappa * SAMPLE_M^2 / 8, negligible


@dataclass(frozen=True)
class Segment:
    length_m: float
    curvature_per_m: float  # + turns left


class Road:
    """Centreline sampled every SAMPLE_M metres from s = -start_back_m (behind the start) to the end."""

    def __init__(self, segments: tuple[Segment, ...], start_back_m: float = 150.0) -> None:
        self.segments = (Segment(start_back_m, 0.0), *segments)
        self.s_origin_m = start_back_m
        total = sum(seg.length_m for seg in self.segments)
        n = int(np.ceil(total / SAMPLE_M)) + 1
        s = np.arange(n) * SAMPLE_M
        kappa = np.zeros(n)
        edge = 0.0
        for seg in self.segments:
            kappa[(s >= edge) & (s < edge + seg.length_m)] = seg.curvature_per_m
            edge += seg.length_m
        kappa[s >= edge] = self.segments[-1].curvature_per_m
        heading = np.concatenate([[0.0], np.cumsum(0.5 * (kappa[1:] + kappa[:-1]) * SAMPLE_M)])
        x = np.concatenate([[0.0], np.cumsum(0.5 * (np.cos(heading[1:]) + np.cos(heading[:-1])) * SAMPLE_M)])
        y = np.concatenate([[0.0], np.cumsum(0.5 * (np.sin(heading[1:]) + np.sin(heading[:-1])) * SAMPLE_M)])
        # Shift so that s = 0 (where the scenario starts) sits at the world origin heading +x.
        i0 = round(start_back_m / SAMPLE_M)
        self.s = s - start_back_m
        self.x = x - x[i0]
        self.y = y - y[i0]
        self.heading = heading - heading[i0]
        self.kappa = kappa

    @property
    def s_min(self) -> float:
        return float(self.s[0])

    @property
    def s_max(self) -> float:
        return float(self.s[-1])

    def curvature(self, s: FloatArray | float) -> FloatArray:
        """Curvature (1/m, + left) at arc length s (m)."""
        return np.asarray(np.interp(s, self.s, self.kappa), dtype=np.float64)

    def heading_at(self, s: FloatArray | float) -> FloatArray:
        """Centreline heading (rad, world frame) at arc length s (m)."""
        return np.asarray(np.interp(s, self.s, self.heading), dtype=np.float64)

    def to_world(self, s: FloatArray | float, d: FloatArray | float) -> tuple[FloatArray, FloatArray]:
        """Frenet (s, d) -> world (x, y); arrays broadcast."""
        s_arr = np.asarray(s, dtype=np.float64)
        d_arr = np.asarray(d, dtype=np.float64)
        h = np.interp(s_arr, self.s, self.heading)
        x = np.interp(s_arr, self.s, self.x) - np.sin(h) * d_arr
        y = np.interp(s_arr, self.s, self.y) + np.cos(h) * d_arr
        return x, y

    def strip(self, s0: float, s1: float, d0: float, d1: float, step_m: float = 2.0) -> FloatArray:
        """World polygon (N, 2) of the band s0..s1 between offsets d0..d1 (for top-down drawing)."""
        n = max(2, int(np.ceil((s1 - s0) / step_m)) + 1)
        ss = np.linspace(s0, s1, n)
        xl, yl = self.to_world(ss, np.full(n, d1))
        xr, yr = self.to_world(ss[::-1], np.full(n, d0))
        return np.stack([np.concatenate([xl, xr]), np.concatenate([yl, yr])], axis=1)

    def to_frenet(self, x: float, y: float, s_hint: float | None = None, window_m: float = 30.0) -> tuple[float, float]:
        """World (x, y) -> Frenet (s, d) of the nearest centreline point; with s_hint only samples within window_m
        of it are searched (cheap, and it keeps a point near a tight bend on the branch it was on)."""
        if s_hint is None:
            lo, hi = 0, self.s.size
        else:
            lo = max(0, int((s_hint - window_m - self.s[0]) / SAMPLE_M))
            hi = min(self.s.size, int((s_hint + window_m - self.s[0]) / SAMPLE_M) + 1)
        dx, dy = x - self.x[lo:hi], y - self.y[lo:hi]
        i = lo + int(np.argmin(dx * dx + dy * dy))
        h = self.heading[i]
        ex, ey = x - self.x[i], y - self.y[i]
        along = math.cos(h) * ex + math.sin(h) * ey
        return float(self.s[i] + along), float(-math.sin(h) * ex + math.cos(h) * ey)
