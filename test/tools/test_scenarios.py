"""Scenario generator: determinism per seed, geometry of the renderer, planner behaviour and labels."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from alpamayo_ros.core.decisions import Agreement, Lateral, Longitudinal, check_consistency, parse_decision
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.sim import SCENARIOS, build_scenario, generate, make_rig
from alpamayo_ros.sim.generate import START_NS
from alpamayo_ros.sim.render import Box, Renderer
from alpamayo_ros.sim.world import Motion


def test_rig_follows_core_rig_order_and_fov() -> None:
    rig = make_rig(1920, 1080)
    assert tuple(c.name for c in rig) == CAMERA_NAMES
    for cam in rig:
        fov = int(cam.name.rsplit("_", 1)[1].removesuffix("fov"))
        assert cam.mount.hfov_deg == fov
        assert math.degrees(2 * math.atan(960 / cam.fx)) == pytest.approx(fov)
        rot = cam.rotation
        assert np.allclose(rot.T @ rot, np.eye(3)) and np.linalg.det(rot) == pytest.approx(1.0)


def test_projection_of_points_on_the_optical_axis_and_to_the_left() -> None:
    front = make_rig(1920, 1080)[6]  # front tele, no pitch
    uv, depth = front.project(np.array([[51.75, 0.0, 1.45], [51.75, 1.0, 1.45], [51.75, 0.0, 0.45]]))
    assert depth[0] == pytest.approx(50.0)
    assert uv[0] == pytest.approx([960.0, 540.0])
    assert uv[1][0] < 960.0  # +y (left) appears left in the image
    assert uv[2][1] > 540.0  # lower appears lower


@pytest.mark.parametrize("seed", [0, 5])
def test_same_seed_same_scenario_other_seed_differs(seed: int) -> None:
    a = generate("pedestrian_crossing", seed, 3.0, 64, 36)
    b = generate("pedestrian_crossing", seed, 3.0, 64, 36)
    c = generate("pedestrian_crossing", seed + 1, 3.0, 64, 36)
    assert np.array_equal(a.track.x, b.track.x) and np.array_equal(a.track.v, b.track.v)
    ticks_a, ticks_b = list(a.ticks()), list(b.ticks())
    for ta, tb in zip(ticks_a, ticks_b, strict=True):
        assert ta.stamp_ns == tb.stamp_ns and ta.label == tb.label
        assert all(np.array_equal(x, y) for x, y in zip(ta.images, tb.images, strict=True))
    assert not np.array_equal(a.track.v, c.track.v) or a.scenario.lighting != c.scenario.lighting


def test_rates_and_shapes() -> None:
    gen = generate("free_road", 1, 3.0, 64, 36)
    odom = list(gen.odometry())
    stamps = np.array([o.stamp_ns for o in odom])
    assert len(odom) == 150 and np.all(np.diff(stamps) == 20_000_000)  # 50 Hz
    ticks = list(gen.ticks())
    assert len(ticks) == 30 and ticks[1].stamp_ns - ticks[0].stamp_ns == 100_000_000  # 10 Hz
    assert len(ticks[0].images) == 7 and ticks[0].images[0].shape == (36, 64, 3)
    assert ticks[0].future.shape == (64, 3)


def test_rendered_box_lands_where_the_camera_model_projects_it() -> None:
    """A red box straight ahead: the pixel at its projected centre is red, in the front wide and tele cameras."""
    scenario = build_scenario("free_road", 0, 3.0)
    scenario.actors.clear()
    scenario.props.clear()
    rig = make_rig(320, 180)
    renderer = Renderer(scenario, rig)
    red = (250, 0, 0)
    box = Box(40.0, 0.5, 0.0, 1.0, 1.0, 1.0, red, z0=1.0, emissive=True)
    renderer.boxes_at = lambda t, ex, ey: [box]  # type: ignore[method-assign]
    images = renderer.render(0.0, 0.0, 0.0, 0.0)
    centre = np.array([[40.0, 0.5, 1.5]])  # world == ego frame at the identity pose
    for index in (1, 6):
        uv, depth = rig[index].project(centre)
        assert depth[0] > 0
        u, v = (round(x) for x in uv[0])
        assert tuple(images[index][v, u]) == red, rig[index].name
        assert tuple(images[index][5, 5]) != red
    # behind the rear camera's view: the box must not appear there
    assert not np.any(np.all(images[4] == red, axis=-1))


def test_road_markings_project_consistently() -> None:
    """The ego lane's right edge line (d = -1.75 m) appears where the front camera projects it."""
    gen = generate("free_road", 0, 3.0, 640, 360)
    scenario = gen.scenario
    scenario.actors.clear()
    scenario.props.clear()
    images = Renderer(scenario, gen.cameras).render(0.0, 0.0, 0.0, 0.0)
    cam = gen.cameras[1]
    uv, _ = cam.project(np.array([[12.0, -1.575, 0.0]]))  # middle of the 15 cm painted line
    u, v = (round(x) for x in uv[0])
    assert images[1][v, u].mean() > 150  # paint
    uv, _ = cam.project(np.array([[12.0, 0.0, 0.0]]))  # lane centre: asphalt
    u, v = (round(x) for x in uv[0])
    assert images[1][v, u].mean() < 130


def test_motion_integrates_and_stops() -> None:
    m = Motion(10.0, 10.0, ((1.0, -5.0),))
    assert m.state(1.0)[:2] == pytest.approx((20.0, 10.0))
    s, v, a = m.state(10.0)
    assert v == 0.0 and a == 0.0 and s == pytest.approx(20.0 + 10.0 * 10.0 / 10.0)
    assert Motion(0.0, -8.0).state(2.0)[0] == pytest.approx(-16.0)


EXPECTED = {
    "free_road": (Longitudinal.ACCELERATE, None),
    "lead_vehicle_braking": (Longitudinal.DECELERATE, None),
    "pedestrian_crossing": (Longitudinal.YIELD, None),
    "stationary_vehicle_nudge": (None, Lateral.NUDGE_LEFT),
    "curve_left": (None, Lateral.TURN_LEFT),
    "curve_right": (None, Lateral.TURN_RIGHT),
    "red_light_stop_line": (Longitudinal.STOP, None),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_planner_and_labels_show_the_scenario(name: str) -> None:
    gen = generate(name, 2, 10.0, 32, 18)
    ticks = list(gen.ticks(render=False))
    lon, lat = EXPECTED[name]
    if lon is not None:
        assert any(t.label.longitudinal == lon for t in ticks), name
    if lat is not None:
        assert any(t.label.lateral == lat for t in ticks), name
    for t in ticks:
        parsed = parse_decision(t.label.text)  # the node's parser reads our labels as we meant them
        assert (parsed.longitudinal, parsed.lateral) == (t.label.longitudinal, t.label.lateral), t.label.text
    tr = gen.track
    assert np.all(tr.v >= 0.0) and np.all(np.isfinite(tr.x))
    if name == "stationary_vehicle_nudge":
        assert tr.d.max() > 0.3  # moved left around the parked car
    if name in ("lead_vehicle_braking", "red_light_stop_line", "pedestrian_crossing"):
        assert tr.v[: 10 * 100].min() < tr.v[0] - 2.0  # slowed down within the 10 s


def test_labels_cite_no_future() -> None:
    """Before the light turns yellow the evidence sees a green light and the decision is never a stop, although the
    future stops; the ego eases off only within the horizon before the change."""
    gen = generate("red_light_stop_line", 4, 10.0, 32, 18)
    light = gen.scenario.light
    assert light is not None
    ticks = list(gen.ticks(render=False))
    before = [t for k, t in enumerate(ticks) if k * 0.1 < light.t_yellow_s - 0.05]
    assert before and all(t.label.longitudinal != Longitudinal.STOP for t in before)
    assert all("yellow" not in t.label.text and "red" not in t.label.text for t in before)
    assert any("green" in t.label.text and t.label.longitudinal == Longitudinal.DECELERATE for t in before)


def test_a_light_beyond_perception_range_is_cited_as_far_ahead() -> None:
    """Seed 8 eases off for a light the planner does not perceive yet; the label once printed that light's
    placeholder state and distance ("is none ... inf m away")."""
    texts = [t.label.text for t in generate("red_light_stop_line", 8, 18.0, 32, 18).ticks(render=False)]
    assert not any("none" in text or "inf" in text for text in texts)
    assert any(text.startswith("There is a traffic light far ahead. I should ease off") for text in texts)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_label_agrees_with_the_ground_truth_future(name: str) -> None:
    """The node's monitor, reading a reference label against the ego's own future, never finds a disagreement: a
    model trained on these pairs is never taught to say one thing and do another."""
    for seed in (3, 1001):
        gen = generate(name, seed, 12.0, 32, 18)
        for tick in gen.ticks(render=False):
            speed = float(gen.track.v[gen.track.index((tick.stamp_ns - START_NS) / 1e9)])
            report = check_consistency(tick.label.text, tick.future[:, :2], speed)
            assert report.agreement is Agreement.AGREE, (name, seed, tick.label.text, report.detail)
            assert not re.search(r"\b(inf|nan|none)\b", tick.label.text), tick.label.text  # no placeholder printed


def test_unknown_scenario_and_short_duration_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        build_scenario("nope", 0, 5.0)
    with pytest.raises(ValueError, match="too short"):
        build_scenario("free_road", 0, 1.0)


def test_planner_slows_for_a_pedestrian_waiting_at_the_kerb() -> None:
    from alpamayo_ros.sim.planner import EGO_FRONT_M, plan

    sc = build_scenario("pedestrian_crossing", 5, 20.0)
    assert sc.crosswalk_s_m is not None
    s_ego = sc.crosswalk_s_m - 40.0 - EGO_FRONT_M
    waiting = plan(sc, 0.0, s_ego, 0.0, 12.0)  # the pedestrian still stands at the kerb at t = 0
    assert waiting.reason == "crosswalk" and waiting.accel_cmd < -0.3
    assert waiting.v_desired < 12.0 and math.isfinite(waiting.pedestrian_dist_m)
    far = plan(sc, 0.0, sc.crosswalk_s_m - 150.0, 0.0, 12.0)  # beyond perception range: no reason to slow
    assert far.reason == "free"


def test_a_bend_is_named_only_once_it_is_close() -> None:
    """Far from a bend the label keeps the lane (the monitor accepts that over a path that follows the bend); the
    direction is named from BEND_IN_VIEW_M on, and inside the bend."""
    from alpamayo_ros.core.decisions import TrajectoryThresholds
    from alpamayo_ros.sim.labels import BEND_IN_VIEW_M
    from alpamayo_ros.sim.planner import CAMERA_EVERY, plan

    gen = generate("curve_left", 3, 14.0, 32, 18)
    tr, named, kept_far = gen.track, 0, 0
    turn = TrajectoryThresholds().turn_heading_rad  # the monitor's own 'this is a bend'
    for k in range(gen.num_ticks):
        i = k * CAMERA_EVERY
        ctx = plan(gen.scenario, float(tr.t[i]), float(tr.s[i]), float(tr.d[i]), float(tr.v[i]))
        label = gen.label_at(i)
        if label.lateral == Lateral.TURN_LEFT:
            named += 1
            assert ctx.curve_dist_m <= BEND_IN_VIEW_M
        elif abs(ctx.heading_change_rad) > turn and ctx.curve_dist_m > BEND_IN_VIEW_M:
            kept_far += 1
            assert label.lateral == Lateral.KEEP_LANE and "Keep the lane" in label.text
    assert named > 0 and kept_far > 0


def test_the_rig_cameras_are_the_overlay_camera_model() -> None:
    """One camera model: every rig camera projects ego points exactly where the overlay's PinholeCamera does."""
    from alpamayo_ros.core.overlay import project
    from alpamayo_ros.sim.rig import make_rig

    points = np.array([[20.0, 1.0, 0.5], [8.0, -3.0, 1.0], [-15.0, 0.5, 0.2], [3.0, 12.0, 0.0]])
    for cam in make_rig(640, 360):
        uv_rig, depth = cam.project(points)
        uv_core, visible = project(cam.pinhole(), points, min_depth_m=0.5)
        assert np.array_equal(visible, depth > 0.5), cam.name
        assert np.allclose(uv_rig[visible], uv_core[visible], atol=1e-6), cam.name
