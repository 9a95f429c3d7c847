"""Seven-camera rendering of a scenario with numpy + OpenCV (no GPU, no 3D engine).

Why it is fast enough in Python: the ground is flat (z = 0 in the ego frame), so for every camera the ground point
seen by each pixel is fixed *in the ego frame*. Each frame we draw one ego-centred top-down texture of the road
(polygons, cv2.fillPoly) and every camera samples it through a precomputed remap table (cv2.remap), then blends a
precomputed sky/fog layer. Objects (vehicles, pedestrians, the traffic light, roadside props) are boxes whose visible
faces are projected and filled with cv2.fillConvexPoly, far to near (painter's algorithm), shaded by the sun.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.types import FloatArray, UInt8Array
from alpamayo_ros.sim.planner import EGO_FRONT_M
from alpamayo_ros.sim.rig import RigCamera
from alpamayo_ros.sim.world import Actor, Color, Scenario

# Ego-centred top-down texture: x in [BEV_X_MIN, BEV_X_MAX], y in [-BEV_Y_HALF, BEV_Y_HALF], BEV_RES m/texel.
BEV_X_MIN, BEV_X_MAX, BEV_Y_HALF, BEV_RES = -90.0, 130.0, 45.0, 0.05
NEAR_M = 0.3
DRAW_RANGE_M = 160.0
GRASS: Color = (88, 118, 62)
ASPHALT: Color = (92, 92, 96)
PAINT: Color = (235, 235, 230)


@dataclass(frozen=True)
class Box:
    """An oriented box on (or above) the ground, world frame. emissive: drawn unshaded and without fog (lamps)."""

    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float
    color: Color
    z0: float = 0.0
    emissive: bool = False

    def corners(self) -> FloatArray:
        """(8, 3) corners: bottom face then top face, counter-clockwise seen from above."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        hl, hw = self.length / 2, self.width / 2
        local = np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]])
        xy = local @ np.array([[c, s], [-s, c]]) + np.array([self.x, self.y])
        bottom = np.column_stack([xy, np.full(4, self.z0)])
        top = np.column_stack([xy, np.full(4, self.z0 + self.height)])
        return np.vstack([bottom, top])


# Faces as corner indices, outward normals follow from the winding (checked at draw time by the face centre).
_FACES = ((4, 5, 6, 7), (0, 3, 2, 1), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))
_FACE_INDEX = np.array(_FACES)


class _CameraTables:
    """Per-camera constants: remap tables into the BEV texture, fog weights and the sky layer."""

    def __init__(self, camera: RigCamera, scenario: Scenario) -> None:
        rays = camera.pixel_rays()
        origin = camera.position
        rz = rays[..., 2]
        ground = rz < -1e-4
        t = np.where(ground, -origin[2] / np.where(ground, rz, -1.0), np.inf)
        gx = origin[0] + t * rays[..., 0]
        gy = origin[1] + t * rays[..., 1]
        map_x = np.where(ground, (gx - BEV_X_MIN) / BEV_RES, -10.0).astype(np.float32)
        map_y = np.where(ground, (BEV_Y_HALF - gy) / BEV_RES, -10.0).astype(np.float32)
        self.map1, self.map2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        light = scenario.lighting
        fog = np.where(ground, 1.0 - np.exp(-t / light.fog_m), 1.0)
        self.fog = fog.astype(np.float32)
        self.clear = (1.0 - fog).astype(np.float32)
        elevation = np.clip(np.arcsin(np.clip(rz, -1.0, 1.0)) / 0.6, 0.0, 1.0)[..., None]
        sky = (1.0 - elevation) * np.array(light.sky_horizon) + elevation * np.array(light.sky_top)
        self.sky = sky.astype(np.uint8)
        # At night the ego's headlights light the road ahead: a gain per ground pixel, fixed in the ego frame.
        self.headlights = _headlight_gain(gx, gy, ground) if light.night else None


class Renderer:
    """Renders all cameras of a rig for a scenario; construct once (tables cost ~0.1 s per 1080p camera)."""

    def __init__(self, scenario: Scenario, cameras: tuple[RigCamera, ...]) -> None:
        self.scenario = scenario
        self.cameras = cameras
        self._tables = [_CameraTables(cam, scenario) for cam in cameras]
        rows = round(2 * BEV_Y_HALF / BEV_RES)
        cols = round((BEV_X_MAX - BEV_X_MIN) / BEV_RES)
        self._bev = np.zeros((rows, cols, 3), np.uint8)
        tint = scenario.lighting.ground_tint
        self._grass = _tinted(GRASS, tint)
        self._blank = np.empty_like(self._bev)
        self._blank[:] = self._grass
        self._ground_polys = self._build_ground_polygons()
        self._packed = self._pack_ground_polygons()
        self._sun = np.array(scenario.lighting.sun_dir)
        self._noise = np.random.default_rng([scenario.seed, 11])

    # ----------------------------------------------------------------------------------------------- ground
    def _build_ground_polygons(self) -> list[tuple[Color, list[FloatArray]]]:
        """World-frame polygons of the road surface and paint, grouped by colour, drawn in list order."""
        sc, road = self.scenario, self.scenario.road
        tint = sc.lighting.ground_tint
        right, left, width = -sc.lane_width_m / 2, sc.left_edge_d, sc.lane_width_m
        rng = np.random.default_rng([sc.seed, 7])
        groups: list[tuple[Color, list[FloatArray]]] = []
        # Grass texture: darker and lighter patches (fixed in the world, so motion is visible).
        for shade in (0.85, 1.12):
            patches = []
            n = int((road.s_max - road.s_min) / 2.0)
            ss = rng.uniform(road.s_min, road.s_max, n)
            dd = rng.choice([-1.0, 1.0], n) * rng.uniform(3.0, 40.0, n) + sc.centre_line_d
            for s_i, d_i in zip(ss, dd, strict=True):
                r = rng.uniform(0.4, 1.5)
                patches.append(road.strip(s_i, s_i + 2 * r, d_i - r, d_i + r, step_m=2 * r))
            groups.append((_tinted(GRASS, tint * shade), patches))
        # Asphalt in 4 m pieces with slight shade changes (patched road surface).
        s0, s1 = road.s_min, road.s_max
        edges = np.arange(s0, s1, 4.0)
        shades = rng.uniform(0.93, 1.07, edges.size)
        for level in (0.95, 1.0, 1.05):
            pieces = [
                road.strip(a, a + 4.05, right - 0.6, left + 0.6, 4.05)
                for a, sh in zip(edges, shades, strict=True)
                if abs(sh - level) <= 0.025 or (level == 0.95 and sh < 0.925) or (level == 1.05 and sh > 1.075)
            ]
            groups.append((_tinted(ASPHALT, tint * level), pieces))
        paint = _tinted(PAINT, tint)
        lines = [road.strip(s0, s1, right + 0.1, right + 0.25), road.strip(s0, s1, left - 0.25, left - 0.1)]
        # Dashed lines between lanes; with more than one lane each way the centre line is a solid double line.
        centre = sc.centre_line_d
        for k in range(2 * sc.lanes_each_way - 1):
            d_line = right + (k + 1) * width
            if sc.lanes_each_way > 1 and abs(d_line - centre) < 1e-6:
                lines += [road.strip(s0, s1, centre + off - 0.06, centre + off + 0.06) for off in (-0.12, 0.12)]
                continue
            lines += [road.strip(a, a + 3.0, d_line - 0.07, d_line + 0.07, 1.0) for a in np.arange(s0, s1, 9.0)]
        if sc.crosswalk_s_m is not None:
            d = right + 0.3
            while d < left - 0.3:
                lines.append(road.strip(sc.crosswalk_s_m, sc.crosswalk_s_m + 4.0, d, d + 0.5, 1.0))
                d += 1.0
        if sc.light is not None:
            s_l = sc.light.s_stop_m
            lines.append(road.strip(s_l - 0.4, s_l, right + 0.1, centre, 0.5))
        groups.append((paint, lines))
        return groups

    def _pack_ground_polygons(self) -> list[tuple[Color, FloatArray, npt.NDArray[np.intp]]]:
        """Each colour group as one vertex array (V, 2) plus polygon start offsets: transformed in one go."""
        packed: list[tuple[Color, FloatArray, npt.NDArray[np.intp]]] = []
        for color, polys in self._ground_polys:
            if polys:
                starts = np.cumsum([0] + [len(p) for p in polys[:-1]]).astype(np.intp)
                packed.append((color, np.concatenate(polys).astype(np.float64), starts))
        return packed

    def _draw_bev(self, ex: float, ey: float, eyaw: float) -> None:
        np.copyto(self._bev, self._blank)  # a memcpy; broadcasting the colour costs 10x more
        c, s = math.cos(eyaw), math.sin(eyaw)
        for color, verts, starts in self._packed:
            dx, dy = verts[:, 0] - ex, verts[:, 1] - ey
            lx, ly = c * dx + s * dy, -s * dx + c * dy
            inside = (
                (np.maximum.reduceat(lx, starts) >= BEV_X_MIN)
                & (np.minimum.reduceat(lx, starts) <= BEV_X_MAX)
                & (np.maximum.reduceat(ly, starts) >= -BEV_Y_HALF)
                & (np.minimum.reduceat(ly, starts) <= BEV_Y_HALF)
            )
            if not inside.any():
                continue
            px = np.stack([(lx - BEV_X_MIN) / BEV_RES * 16, (BEV_Y_HALF - ly) / BEV_RES * 16], 1).astype(np.int32)
            polys = np.split(px, starts[1:])
            cv2.fillPoly(self._bev, [p for p, ok in zip(polys, inside, strict=True) if ok], color, cv2.LINE_8, 4)

    # ------------------------------------------------------------------------------------------------ boxes
    def boxes_at(self, t: float, ex: float, ey: float, actors: Sequence[Actor] | None = None) -> list[Box]:
        """All boxes in the world at time t within DRAW_RANGE_M of the ego; actors: the road users to draw (default:
        the scenario's own, scripted; the closed loop passes its live ones)."""
        sc, road = self.scenario, self.scenario.road
        boxes: list[Box] = []
        for prop in sc.props:
            px, py = road.to_world(prop.s_m, prop.d_m)
            if abs(float(px) - ex) < DRAW_RANGE_M and abs(float(py) - ey) < DRAW_RANGE_M:
                yaw = float(road.heading_at(prop.s_m))
                boxes.append(Box(float(px), float(py), yaw, *prop.size_m, prop.color, prop.z0_m))
        for actor in sc.actors if actors is None else actors:
            s_a, d_a, _, a_a = actor.state(t)
            px, py = road.to_world(s_a, d_a)
            if abs(float(px) - ex) > DRAW_RANGE_M or abs(float(py) - ey) > DRAW_RANGE_M:
                continue
            yaw = float(road.heading_at(s_a)) + actor.heading_rel_rad
            if actor.kind == "vehicle":
                boxes += _vehicle_boxes(
                    float(px), float(py), yaw, actor.size_m, actor.color, braking=a_a < -0.5, night=sc.lighting.night
                )
            else:
                boxes += _pedestrian_boxes(float(px), float(py), yaw, actor.size_m, actor.color)
        if sc.light is not None:
            boxes += _light_boxes(sc, t)
        return boxes

    def _shaded_faces(self, boxes: list[Box]) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Per frame, shared by all cameras: corners (N, 8, 3) world, face colours (N, 6, 3), emissive (N,)."""
        corners = np.stack([b.corners() for b in boxes])
        faces = corners[:, _FACE_INDEX]  # (N, 6, 4, 3)
        normals = np.cross(faces[:, :, 1] - faces[:, :, 0], faces[:, :, 2] - faces[:, :, 0])
        normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12
        shade = 0.55 + 0.45 * np.clip(normals @ self._sun, 0.0, None)  # (N, 6)
        base = np.array([b.color for b in boxes], dtype=np.float64)  # (N, 3)
        emissive = np.array([b.emissive for b in boxes])
        factor = np.where(emissive[:, None], 1.0, shade * self.scenario.lighting.ground_tint)
        return corners, base[:, None, :] * factor[..., None], emissive

    def _draw_boxes(
        self,
        image: UInt8Array,
        cam: RigCamera,
        shaded: tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]],
        to_ego: FloatArray,
    ) -> None:
        corners, colors, emissive = shaded
        ego = corners.reshape(-1, 3) @ to_ego[:3, :3].T + to_ego[:3, 3]
        pts = cam.ego_to_camera(ego).reshape(-1, 8, 3)  # camera optical frame
        z = pts[..., 2]
        half_tan = cam.width / 2.0 / cam.fx * 1.05
        lim = half_tan * np.maximum(z, 0.0) + 0.5
        visible = (z.max(axis=1) >= NEAR_M) & ~np.all(pts[..., 0] > lim, axis=1) & ~np.all(pts[..., 0] < -lim, axis=1)
        idx = np.nonzero(visible)[0]
        if idx.size == 0:
            return
        dist = np.linalg.norm(pts[idx].mean(axis=1), axis=1)
        idx, dist = idx[np.argsort(-dist)], np.sort(dist)[::-1]  # far to near
        faces = pts[idx][:, _FACE_INDEX]  # (M, 6, 4, 3)
        normals = np.cross(faces[:, :, 1] - faces[:, :, 0], faces[:, :, 2] - faces[:, :, 0])
        front = np.einsum("mfk,mfk->mf", normals, faces.mean(axis=2)) < 0.0  # facing the camera (at the origin)
        fog = np.where(emissive[idx], 0.0, 1.0 - np.exp(-dist / self.scenario.lighting.fog_m))
        fog_color = np.array(self.scenario.lighting.sky_horizon, dtype=np.float64)
        face_colors = (1.0 - fog[:, None, None]) * colors[idx] + fog[:, None, None] * fog_color
        face_colors = np.clip(face_colors, 0, 255).astype(np.int32)
        f, cx, cy = cam.fx, cam.width / 2.0, cam.height / 2.0
        for m, face_ok in enumerate(front):
            for k in np.nonzero(face_ok)[0]:
                fp = faces[m, k]
                poly = fp if fp[:, 2].min() >= NEAR_M else _clip_near(fp)
                if poly is None:
                    continue
                uv = np.stack([f * poly[:, 0] / poly[:, 2] + cx, f * poly[:, 1] / poly[:, 2] + cy], 1)
                uv = np.clip(uv, -30000.0, 30000.0)
                color = face_colors[m, k]
                cv2.fillConvexPoly(
                    image, (uv * 16).astype(np.int32), (int(color[0]), int(color[1]), int(color[2])), cv2.LINE_AA, 4
                )

    # --------------------------------------------------------------------------------------------- frames
    def render(
        self, t: float, ex: float, ey: float, eyaw: float, actors: Sequence[Actor] | None = None
    ) -> list[UInt8Array]:
        """RGB images (H, W, 3) of every camera for the ego at world pose (ex, ey, eyaw) at time t (actors: as in
        boxes_at)."""
        self._draw_bev(ex, ey, eyaw)
        c, s = math.cos(eyaw), math.sin(eyaw)
        to_ego = np.array([[c, s, 0.0, -(c * ex + s * ey)], [-s, c, 0.0, s * ex - c * ey], [0.0, 0.0, 1.0, 0.0]])
        # Without live actors the call keeps boxes_at's three-argument form (what overriding callers implement).
        boxes = self.boxes_at(t, ex, ey) if actors is None else self.boxes_at(t, ex, ey, actors)
        shaded = self._shaded_faces(boxes) if boxes else None
        images = []
        for cam, tab in zip(self.cameras, self._tables, strict=True):
            ground = cv2.remap(
                self._bev, tab.map1, tab.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=self._grass
            )
            if tab.headlights is not None:
                ground = np.clip(ground * tab.headlights, 0.0, 255.0).astype(np.uint8)
            image = cv2.blendLinear(ground, tab.sky, tab.clear, tab.fog)
            if shaded is not None:
                self._draw_boxes(image, cam, shaded, to_ego)
            images.append(self._camera_effects(image))
        return images

    def _camera_effects(self, image: UInt8Array) -> UInt8Array:
        """Exposure gain and Gaussian sensor noise (scenario.exposure_gain, noise_std in 8-bit levels); the noise
        stream is seeded per scenario, so a rendered sequence is reproducible when rendered in the same order."""
        sc = self.scenario
        if sc.exposure_gain == 1.0 and sc.noise_std == 0.0:
            return image
        out = image.astype(np.float32) * np.float32(sc.exposure_gain)
        if sc.noise_std > 0.0:
            out += self._noise.normal(0.0, sc.noise_std, image.shape).astype(np.float32)
        result: UInt8Array = np.clip(out, 0.0, 255.0).astype(np.uint8)
        return result


def _tinted(color: Color, factor: float) -> Color:
    return (min(255, int(color[0] * factor)), min(255, int(color[1] * factor)), min(255, int(color[2] * factor)))


def _clip_near(poly: FloatArray) -> FloatArray | None:
    """Sutherland-Hodgman clip of a camera-frame polygon against the plane z = NEAR_M."""
    out = []
    n = len(poly)
    for k in range(n):
        a, b = poly[k], poly[(k + 1) % n]
        a_in, b_in = a[2] >= NEAR_M, b[2] >= NEAR_M
        if a_in:
            out.append(a)
        if a_in != b_in:
            r = (NEAR_M - a[2]) / (b[2] - a[2])
            out.append(a + r * (b - a))
    return np.array(out) if len(out) >= 3 else None


def _local(x: float, y: float, yaw: float, fwd: float, left: float) -> tuple[float, float]:
    c, s = math.cos(yaw), math.sin(yaw)
    return x + c * fwd - s * left, y + s * fwd + c * left


def _headlight_gain(gx: FloatArray, gy: FloatArray, ground: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """(H, W, 1) brightness gain of the ground lit by the ego's low beams: a cone ahead of the front bumper that
    fades with distance (about 4x at 10 m, back to 1x beyond ~60 m); 1 elsewhere. gx, gy: ego-frame ground (m)."""
    ahead = np.where(ground, gx - EGO_FRONT_M, -1.0)
    spread = 1.0 + 0.3 * np.maximum(ahead, 0.0)
    cone = np.exp(-((np.where(ground, gy, 0.0) / spread) ** 2)) * np.clip(ahead / 4.0, 0.0, 1.0)
    gain = 1.0 + 4.0 * cone * np.exp(-np.maximum(ahead, 0.0) / 25.0)
    return np.where(ground, gain, 1.0)[..., None].astype(np.float32)


def _vehicle_boxes(
    x: float,
    y: float,
    yaw: float,
    size: tuple[float, float, float],
    color: Color,
    *,
    braking: bool,
    night: bool = False,
) -> list[Box]:
    """Wheels, body, glass and tail lamps (lit when braking, dimly at night); at night also lit headlamps."""
    length, width, height = size
    boxes = []
    for fwd in (0.33 * length, -0.33 * length):
        for left in (0.42 * width, -0.42 * width):
            wx, wy = _local(x, y, yaw, fwd, left)
            boxes.append(Box(wx, wy, yaw, 0.65, 0.22, 0.62, (20, 20, 20)))
    boxes.append(Box(x, y, yaw, length, width, 0.55 * height - 0.25, color, z0=0.25))
    cx, cy = _local(x, y, yaw, -0.08 * length, 0.0)
    glass = (45, 55, 65)
    boxes.append(Box(cx, cy, yaw, 0.52 * length, 0.9 * width, 0.45 * height, glass, z0=0.55 * height))
    lamp = (255, 30, 30) if braking else (170, 25, 25) if night else (120, 20, 20)
    for left in (0.38 * width, -0.38 * width):
        lx, ly = _local(x, y, yaw, -length / 2 - 0.02, left)
        boxes.append(Box(lx, ly, yaw, 0.06, 0.3, 0.15, lamp, z0=0.45 * height, emissive=braking or night))
        if night:
            hx, hy = _local(x, y, yaw, length / 2 + 0.02, left)
            boxes.append(Box(hx, hy, yaw, 0.06, 0.3, 0.15, (255, 245, 210), z0=0.4 * height, emissive=True))
    return boxes


def _pedestrian_boxes(x: float, y: float, yaw: float, size: tuple[float, float, float], color: Color) -> list[Box]:
    depth, width, height = size
    return [
        Box(x, y, yaw, depth * 0.8, width * 0.7, 0.47 * height, (40, 40, 60)),
        Box(x, y, yaw, depth, width, 0.38 * height, color, z0=0.47 * height),
        Box(x, y, yaw, 0.22, 0.2, 0.14 * height, (225, 180, 150), z0=0.86 * height),
    ]


def _light_boxes(sc: Scenario, t: float) -> list[Box]:
    """Pole on the right, a mast arm over the ego lane and a three-lamp head facing the ego."""
    assert sc.light is not None
    road, s_l = sc.road, sc.light.s_stop_m + 2.0
    yaw = float(road.heading_at(s_l))
    width = sc.lane_width_m
    px, py = road.to_world(s_l, -width / 2 - 1.0)
    ax, ay = road.to_world(s_l, -width / 4)
    gray = (60, 60, 60)
    boxes = [
        Box(float(px), float(py), yaw, 0.2, 0.2, 5.8, gray),
        Box(
            *(0.5 * (float(px) + float(ax)), 0.5 * (float(py) + float(ay))),
            yaw,
            0.15,
            width * 0.75 + 1.0,
            0.15,
            gray,
            z0=5.6,
        ),
        Box(float(ax), float(ay), yaw, 0.35, 0.45, 1.2, (25, 25, 25), z0=4.4),
    ]
    state = sc.light.state(t)
    for k, (name, on) in enumerate((("red", (255, 40, 30)), ("yellow", (255, 200, 0)), ("green", (40, 255, 90)))):
        lit = state == name
        color = on if lit else (on[0] // 5, on[1] // 5, on[2] // 5)
        lx, ly = _local(float(ax), float(ay), yaw, -0.2, 0.0)
        boxes.append(Box(lx, ly, yaw, 0.06, 0.26, 0.26, color, z0=5.3 - k * 0.37, emissive=lit))
    return boxes
