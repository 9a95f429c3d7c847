"""Every scene parameter reaches what the generator writes: the rendered frames, the ego's motion and the labels.

The `default` distribution is pinned to the generator as it was before the axes existed: frames, futures and
labels hash to the values that generator produced (computed on its commit) for every kind but the red light, whose
stop line moved on purpose (test_sim_world_stop_line.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import numpy as np
import pytest

from alpamayo_ros.core.decisions import Agreement, Longitudinal, check_consistency
from alpamayo_ros.sim import SCENARIOS, build_scenario, generate, make_rig
from alpamayo_ros.sim.generate import START_NS
from alpamayo_ros.sim.planner import CAMERA_EVERY, EGO_FRONT_M
from alpamayo_ros.sim.render import Renderer
from alpamayo_ros.sim.world import Scenario

# sha256[:16] over labels, futures and every 10th tick's images of generate(kind, seed, 5.0, 48, 32), as the
# generator before the scenario axes wrote them.
PINNED = {
    ("free_road", 3): "f6576691395d8fc7",
    ("free_road", 17): "250030e7fdefb709",
    ("lead_vehicle_braking", 3): "642d89b2673899a3",
    ("lead_vehicle_braking", 17): "33de5dbab83d84f7",
    ("pedestrian_crossing", 3): "db9d9d31e112a2c1",
    ("pedestrian_crossing", 17): "32c31a526d09dd29",
    ("stationary_vehicle_nudge", 3): "c22c256e593b8daa",
    ("stationary_vehicle_nudge", 17): "01c68150bd4b7eb5",
    ("curve_left", 3): "5a30ff23af512ff1",
    ("curve_left", 17): "1150baf3f3e1530b",
    ("curve_right", 3): "02a1042d195717b9",
    ("curve_right", 17): "3af188a45aca15cf",
}


def _digest(name: str, seed: int) -> str:
    gen = generate(name, seed, 5.0, 48, 32)
    digest = hashlib.sha256()
    tr = gen.track
    renderer = Renderer(gen.scenario, gen.cameras)
    for k, tick in enumerate(gen.ticks(render=False)):
        digest.update(tick.label.text.encode())
        digest.update(np.round(tick.future, 6).tobytes())
        if k % 10 == 0:
            i = k * CAMERA_EVERY
            for image in renderer.render(float(tr.t[i]), float(tr.x[i]), float(tr.y[i]), float(tr.yaw[i])):
                digest.update(image.tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize(("name", "seed"), list(PINNED))
def test_default_reproduces_the_original_generator(name: str, seed: int) -> None:
    assert _digest(name, seed) == PINNED[(name, seed)]


def _front(scenario: Scenario, t: float = 0.0, size: tuple[int, int] = (320, 180)) -> np.ndarray:
    """The front wide camera at time t with the ego on the lane centre at s = 0 (identity pose)."""
    rig = make_rig(*size)
    return Renderer(scenario, rig).render(t, 0.0, 0.0, 0.0)[1].astype(np.float64)


def _pixel(uv: np.ndarray) -> tuple[int, int]:
    return round(float(uv[0][1])), round(float(uv[0][0]))


def test_night_is_darker_with_the_road_ahead_lit_by_headlights() -> None:
    day = build_scenario("free_road", 2, 6.0, overrides={"lighting": "noon"})
    night = build_scenario("free_road", 2, 6.0, overrides={"lighting": "night"})
    assert _front(night).mean() < 0.4 * _front(day).mean()
    # The same night without headlights: the lane 12 m ahead is darker, the sky is the same.
    unlit = replace(night, lighting=replace(night.lighting, night=False))
    cam = make_rig(320, 180)[1]
    lane = _pixel(cam.project(np.array([[12.0, 0.0, 0.0]]))[0])
    lit_image, unlit_image = _front(night), _front(unlit)
    assert lit_image[lane].mean() > 1.5 * unlit_image[lane].mean()
    assert np.array_equal(lit_image[2], unlit_image[2])


def test_at_night_other_cars_show_lit_lamps() -> None:
    sc = build_scenario("lead_vehicle_braking", 2, 8.0, overrides={"lighting": "night"})
    day = build_scenario("lead_vehicle_braking", 2, 8.0, overrides={"lighting": "noon"})
    renderer, day_renderer = Renderer(sc, make_rig(32, 18)), Renderer(day, make_rig(32, 18))
    lamps = [b for b in renderer.boxes_at(0.0, 0.0, 0.0) if b.emissive]
    assert lamps and not [b for b in day_renderer.boxes_at(0.0, 0.0, 0.0) if b.emissive]
    assert any(b.color == (255, 245, 210) for b in lamps)  # headlamps


def test_at_night_the_labels_name_a_pedestrian_only_within_the_low_beams() -> None:
    """By day a waiting pedestrian is reasoned about (and slowed for) from far out; at night only once the headlights
    show them, and the ego still stops for the crossing."""
    from alpamayo_ros.sim.planner import NIGHT_PEDESTRIAN_RANGE_M

    def named(lighting: str) -> tuple[list[float], float]:
        gen = generate("pedestrian_crossing", 2000, 20.0, 32, 18, overrides={"lighting": lighting})
        dists = [
            float(m.group(1))
            for tick in gen.ticks(render=False)
            if (m := re.search(r"pedestrian.* at the crosswalk (\d+) m ahead", tick.label.text))
        ]
        return dists, float(np.min(gen.track.v))

    day, _ = named("noon")
    night, night_min_speed = named("night")
    assert max(day) > 60.0
    assert night and max(night) <= NIGHT_PEDESTRIAN_RANGE_M
    assert night_min_speed < 0.5  # it stopped at the crosswalk


def test_lane_count_and_width_move_the_painted_road() -> None:
    cam = make_rig(320, 180)[1]
    one = build_scenario("free_road", 1, 6.0, overrides={"lanes_each_way": 1, "lighting": "noon"})
    two = build_scenario("free_road", 1, 6.0, overrides={"lanes_each_way": 2, "lighting": "noon"})
    for sc in (one, two):
        sc.actors.clear()
        sc.props.clear()
    beyond_one = _pixel(cam.project(np.array([[15.0, 7.5, 0.0]]))[0])  # left of a two-lane road, inside a four-lane
    lane = _pixel(cam.project(np.array([[15.0, 0.0, 0.0]]))[0])
    image_one, image_two = _front(one), _front(two)
    assert np.abs(image_one[beyond_one] - image_one[lane]).max() > 12  # grass beside a two-lane road
    assert np.abs(image_two[beyond_one] - image_two[lane]).max() < 8  # asphalt of a four-lane road
    assert two.left_edge_d == pytest.approx(3.5 * two.lane_width_m)
    narrow = build_scenario("free_road", 1, 6.0, overrides={"lane_width_m": 3.0, "lighting": "noon"})
    narrow.actors.clear()
    narrow.props.clear()
    edge_narrow = _pixel(cam.project(np.array([[12.0, -1.5 + 0.175, 0.0]]))[0])  # the right edge line at 3.0 m
    assert _front(narrow)[edge_narrow].mean() > 150 and _front(one)[edge_narrow].mean() < 130


@pytest.mark.parametrize("kerb", ["right", "left"])
def test_kerb_side_flips_the_pedestrian_in_the_image_and_the_labels(kerb: str) -> None:
    gen = generate("pedestrian_crossing", 6, 14.0, 32, 18, overrides={"pedestrian_kerb": kerb})
    sc = gen.scenario
    ped = next(a for a in sc.actors if a.kind == "pedestrian")
    assert (ped.d_of_t(0.0) > 0) == (kerb == "left")
    # In the front camera, 25 m before the crosswalk: the pixels the pedestrian changes lie on their side.
    assert sc.crosswalk_s_m is not None
    s_view = sc.crosswalk_s_m - 25.0
    x, y = sc.road.to_world(s_view, 0.0)
    yaw = float(sc.road.heading_at(s_view))
    rig = make_rig(320, 180)
    with_ped = Renderer(sc, rig).render(0.0, float(x), float(y), yaw)[1]
    without = Renderer(replace(sc, actors=[a for a in sc.actors if a is not ped]), rig).render(
        0.0, float(x), float(y), yaw
    )[1]
    cols = np.nonzero(np.any(with_ped != without, axis=(0, 2)))[0]
    assert cols.size > 0 and (cols.mean() < 160) == (kerb == "left")
    texts = [t.label.text for t in gen.ticks(render=False)]
    assert any("pedestrian" in text for text in texts)
    assert any("from the left" in text for text in texts) == (kerb == "left")


def test_exposure_and_noise_reach_every_pixel() -> None:
    base = build_scenario("free_road", 4, 6.0)
    bright = build_scenario("free_road", 4, 6.0, overrides={"exposure_gain": 1.3})
    noisy = build_scenario("free_road", 4, 6.0, overrides={"noise_std": 8.0})
    ref = _front(base)
    assert _front(bright).mean() == pytest.approx(min(255.0, 1.3 * ref.mean()), rel=0.05)
    assert np.std(_front(noisy) - ref) == pytest.approx(8.0, rel=0.15)


def test_traffic_scenery_and_appearance_axes_reach_the_scene() -> None:
    base = build_scenario("free_road", 5, 10.0)
    heavy = build_scenario(
        "free_road",
        5,
        10.0,
        overrides={
            "parked_count": 6,
            "oncoming_count": 6,
            "traffic_speed_scale": 1.5,
            "vehicle_size_scale": 1.3,
            "scenery_density": 2.0,
        },
    )
    parked = [a for a in heavy.actors if a.name == "parked on the shoulder"]
    oncoming = [a for a in heavy.actors if a.name == "oncoming"]
    assert len(parked) == 6 and len(oncoming) == 6
    assert all(a.d_of_t(0.0) + a.size_m[1] / 2 < -heavy.lane_width_m / 2 for a in parked)  # clear of the lane
    base_oncoming = [a for a in base.actors if a.name == "oncoming"]
    assert base_oncoming[0].motion.v0_mps * 1.5 == pytest.approx(oncoming[0].motion.v0_mps)
    assert oncoming[0].size_m[0] == pytest.approx(1.3 * base_oncoming[0].size_m[0])
    assert 1.6 < len(heavy.props) / len(base.props) < 2.4
    # The planner ignores cars parked clear of the lane: the ego drives as in the empty scene.
    assert np.allclose(generate("free_road", 5, 10.0, 16, 16, overrides={"parked_count": 6}).track.d, 0.0)
    anything = build_scenario("lead_vehicle_braking", 5, 10.0, overrides={"vehicle_colors": "any"})
    palette = build_scenario("lead_vehicle_braking", 5, 10.0)
    assert [a.color for a in anything.actors] != [a.color for a in palette.actors]
    dark = build_scenario("pedestrian_crossing", 5, 10.0, overrides={"pedestrian_clothing": "dark"})
    assert max(next(a for a in dark.actors if a.kind == "pedestrian").color) < 60


def test_speeds_reach_the_ego_and_the_pedestrian() -> None:
    fast = generate("free_road", 2, 10.0, 16, 16, overrides={"ego_speed": 20.0})
    assert fast.track.v.max() == pytest.approx(20.0, abs=0.3)
    sc = build_scenario("pedestrian_crossing", 2, 10.0, overrides={"pedestrian_speed": 2.0})
    ped = next(a for a in sc.actors if a.kind == "pedestrian")
    t0 = sc.seconds * sc.params.event_time_ratio if sc.params else 0.0
    assert ped.d_of_t(t0 + 1.5) - ped.d_of_t(t0 + 0.5) == pytest.approx(2.0)


def test_a_red_light_on_a_bend_and_a_pedestrian_after_a_lead_vehicle() -> None:
    red = generate("red_light_stop_line", 3, 16.0, 16, 16, distribution="composed", overrides={"late_yellow": False})
    assert red.scenario.light is not None
    assert abs(float(red.scenario.road.curvature(red.scenario.light.s_stop_m))) > 1e-3  # the line is on the bend
    labels = [t.label for t in red.ticks(render=False)]
    assert any(label.longitudinal == Longitudinal.STOP for label in labels)
    assert any("curves" in label.text for label in labels)

    gen = generate("lead_vehicle_braking", 2, 20.0, 16, 16, distribution="composed")
    lons = [t.label.longitudinal for t in gen.ticks(render=False)]
    first_follow = lons.index(Longitudinal.FOLLOW)
    assert Longitudinal.YIELD in lons[first_follow:]
    ped = next(a for a in gen.scenario.actors if a.kind == "pedestrian")
    lead = next(a for a in gen.scenario.actors if a.name == "lead vehicle")
    walking = next(t for t in np.arange(0.0, 20.0, 0.05) if ped.d_of_t(float(t)) != ped.d_of_t(0.0))
    assert lead.state(float(walking))[0] > ped.motion.s0_m  # the lead has passed the crosswalk


def test_a_bend_that_asks_too_much_is_labelled_as_a_slow_down_and_driven_as_one() -> None:
    """A `bends` curve asking well over the expert's 2 m/s^2 at cruise speed makes it slow down, and the labels say
    so; the `default` curves of the same seeds (at most 3.2 m/s^2) are never labelled as one."""
    for seed in range(3):
        sharp = generate("curve_left", seed, 14.0, 16, 16, distribution="bends")
        p = sharp.scenario.params
        assert p is not None and p.ego_speed_mps**2 / p.bend_radius_m > 3.0, (seed, p.ego_speed_mps, p.bend_radius_m)
        labels = [t.label for t in sharp.ticks(render=False)]
        slowing = [
            lb for lb in labels if lb.longitudinal is Longitudinal.DECELERATE and "slow down for the curve" in lb.text
        ]
        assert len(slowing) >= 20, (seed, len(slowing))
        assert sharp.track.v.min() < 0.9 * p.ego_speed_mps
        gentle = generate("curve_left", seed, 14.0, 16, 16)
        assert not any(t.label.longitudinal is Longitudinal.DECELERATE for t in gentle.ticks(render=False))


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["wide", "shifted", "composed", "bends"])
def test_labels_agree_with_the_future_and_print_no_placeholder(distribution: str) -> None:
    """As for the default scenes: the node's monitor agrees with every label, and no label prints inf/nan/none; the
    distances a label prints are the planner's, rounded."""
    for name in SCENARIOS:
        gen = generate(name, 21, 14.0, 16, 16, distribution=distribution)
        light = gen.scenario.light
        for tick in gen.ticks(render=False):
            i = gen.track.index((tick.stamp_ns - START_NS) / 1e9)
            report = check_consistency(tick.label.text, tick.future[:, :2], float(gen.track.v[i]))
            assert report.agreement is Agreement.AGREE, (name, distribution, tick.label.text, report.detail)
            assert not re.search(r"\b(inf|nan|none)\b", tick.label.text), tick.label.text
            match = re.search(r"stop line is (\d+) m away", tick.label.text)
            if match and light is not None:
                assert int(match.group(1)) == round(max(0.0, light.s_stop_m - gen.track.s[i] - EGO_FRONT_M))
