"""How road users, roadside props and the sky look: per-actor appearance and scenery drawn from a random stream.

The draws here are the scene's details (a car's exact size and paint, where each tree stands); the parameters that
shape them (size scale, colour mode, scenery density, lighting) come from SceneParams. With the default parameters
every function consumes its stream exactly as the original generator did. Sizes in metres, colours RGB 0..255.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alpamayo_ros.sim.world import VEHICLE_COLORS, Actor, Color, Lighting, Motion, Prop

# Per lighting: sky top, sky at the horizon, ground brightness, distance to 63 % fog (m).
SKIES: dict[str, tuple[Color, Color, float, float]] = {
    "noon": ((60, 110, 200), (180, 205, 235), 1.0, 120.0),
    "overcast": ((150, 155, 165), (200, 200, 205), 0.85, 70.0),
    "dusk": ((40, 50, 100), (230, 150, 90), 0.6, 80.0),
    "night": ((6, 8, 20), (22, 26, 40), 0.22, 60.0),
}
# Clothing colour ranges (per channel, upper bound excluded) by pedestrian_clothing.
CLOTHING: dict[str, tuple[int, int]] = {"any": (40, 220), "dark": (15, 60), "bright": (170, 250)}


def const(value: float) -> Callable[[float], float]:
    """A lateral offset that does not change with time."""
    return lambda _t: value


def vehicle_color(rng: np.random.Generator, mode: str) -> Color:
    """palette: a common car colour with a little jitter; any: any colour."""
    if mode == "any":
        rgb = rng.integers(0, 256, size=3)
        return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    base = VEHICLE_COLORS[int(rng.integers(len(VEHICLE_COLORS)))]
    jitter = rng.integers(-15, 16, size=3)
    return (
        int(np.clip(base[0] + jitter[0], 0, 255)),
        int(np.clip(base[1] + jitter[1], 0, 255)),
        int(np.clip(base[2] + jitter[2], 0, 255)),
    )


def vehicle(
    rng: np.random.Generator,
    motion: Motion,
    d: float,
    *,
    size_scale: float,
    colors: str,
    oncoming: bool = False,
    name: str = "",
) -> Actor:
    """A car of random size (times size_scale) and paint at lateral offset d."""
    size = (
        float(rng.uniform(4.2, 5.0)) * size_scale,
        float(rng.uniform(1.75, 1.95)) * size_scale,
        float(rng.uniform(1.4, 1.7)) * size_scale,
    )
    return Actor("vehicle", size, vehicle_color(rng, colors), motion, const(d), np.pi if oncoming else 0.0, name)


def clothing_color(rng: np.random.Generator, clothing: str) -> Color:
    """A pedestrian's clothing colour (3 draws) in the range of pedestrian_clothing."""
    lo, hi = CLOTHING[clothing]
    return (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))


def crossing(d_start: float, d_end: float, t_start: float, speed_mps: float) -> Callable[[float], float]:
    """Lateral offset over time of a pedestrian who stands at d_start until t_start, then walks to d_end."""
    step = speed_mps if d_end >= d_start else -speed_mps
    lo, hi = min(d_start, d_end), max(d_start, d_end)

    def d_of_t(t: float) -> float:
        return float(np.clip(d_start + max(0.0, t - t_start) * step, lo, hi))

    return d_of_t


def props(
    rng: np.random.Generator, s_end: float, right_edge_d: float, left_edge_d: float, density: float = 1.0
) -> list[Prop]:
    """Trees, posts and buildings on both sides, so motion is visible even on an empty road.

    density scales how often a prop site comes along (1.0: one every 9..18 m per side)."""
    out: list[Prop] = []
    s = -140.0
    while s < s_end:
        for side in (-1.0, 1.0):
            edge = right_edge_d if side < 0 else left_edge_d
            r = rng.uniform()
            if r < 0.45:  # tree: trunk + crown
                d = edge + side * rng.uniform(3.0, 9.0)
                h = rng.uniform(4.0, 8.0)
                green = (int(rng.integers(30, 70)), int(rng.integers(90, 150)), int(rng.integers(30, 60)))
                out.append(Prop(s, d, (0.4, 0.4, h * 0.45), (90, 65, 40)))
                c = rng.uniform(2.5, 4.5)
                out.append(Prop(s, d, (c, c, h * 0.6), green, z0_m=h * 0.4))
            elif r < 0.65:  # building
                d = edge + side * rng.uniform(14.0, 25.0)
                gray = int(rng.integers(120, 210))
                tint = rng.integers(-20, 21, size=3)
                color = (
                    int(np.clip(gray + tint[0], 0, 255)),
                    int(np.clip(gray + tint[1], 0, 255)),
                    int(np.clip(gray + tint[2], 0, 255)),
                )
                out.append(Prop(s, d, (rng.uniform(8, 20), rng.uniform(8, 15), rng.uniform(6, 18)), color))
            elif r < 0.85:  # delineator post close to the road edge
                out.append(Prop(s, edge + side * 1.2, (0.15, 0.15, 1.0), (235, 235, 235)))
        s += float(rng.uniform(9.0, 18.0)) / density
    return out


def lighting(kind: str, azimuth_rad: float, elevation_rad: float, brightness: float, fog_scale: float) -> Lighting:
    """The sky, sun (or moon) direction, ground brightness and fog distance of a lighting kind."""
    top, horizon, base_brightness, base_fog = SKIES[kind]
    sun = (
        float(np.cos(elevation_rad) * np.cos(azimuth_rad)),
        float(np.cos(elevation_rad) * np.sin(azimuth_rad)),
        float(np.sin(elevation_rad)),
    )
    return Lighting(
        top, horizon, float(base_brightness * brightness), sun, float(base_fog * fog_scale), kind == "night"
    )
