"""Unicycle action space and action input projection vs the official functions (float32 and float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from alpamayo_ros.model.action_in_proj import PerWaypointActionInProj
from alpamayo_ros.model.action_space import UnicycleAccelCurvatureActionSpace
from alpamayo_ros.model.config import load_config

DTYPES = [(torch.float32, "f32"), (torch.float64, "f64")]


@pytest.fixture(scope="module")
def space(official_tiny_a):  # type: ignore[no-untyped-def]
    return UnicycleAccelCurvatureActionSpace(load_config(official_tiny_a).action_space)


def _hist(g, dtype):  # type: ignore[no-untyped-def]
    return (
        torch.from_numpy(g.inputs["ego_history_xyz"][:, 0]).to(dtype),
        torch.from_numpy(g.inputs["ego_history_rot"][:, 0]).to(dtype),
    )


@pytest.mark.parametrize(("dtype", "suffix"), DTYPES)
def test_t0_speed(space, goldens_a, dtype, suffix) -> None:  # type: ignore[no-untyped-def]
    xyz, rot = _hist(goldens_a, dtype)
    v0 = space.to(dtype).estimate_t0_speed(xyz, rot)
    np.testing.assert_allclose(v0.numpy(), goldens_a.action_space[f"t0_v_{suffix}"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("dtype", "suffix"), DTYPES)
def test_action_to_traj(space, goldens_a, dtype, suffix) -> None:  # type: ignore[no-untyped-def]
    a = goldens_a.action_space
    xyz, rot = _hist(goldens_a, dtype)
    atol = 1e-4 if dtype == torch.float32 else 1e-9  # fixtures README: f32 atol 1e-4 m, f64 atol 1e-9
    for key in ("fixed_action", "future_action_normalized"):
        out_xyz, out_rot = space.to(dtype).action_to_traj(torch.from_numpy(a[f"{key}_{suffix}"]), xyz, rot)
        prefix = "fixed_action" if key == "fixed_action" else "roundtrip"
        np.testing.assert_allclose(out_xyz.numpy(), a[f"{prefix}_xyz_{suffix}"], rtol=0, atol=atol)
        np.testing.assert_allclose(out_rot.numpy(), a[f"{prefix}_rot_{suffix}"], rtol=0, atol=atol / 10)


@pytest.mark.parametrize(("dtype", "suffix"), DTYPES)
def test_traj_to_action(space, goldens_a, dtype, suffix) -> None:  # type: ignore[no-untyped-def]
    xyz, rot = _hist(goldens_a, dtype)
    fut_xyz = torch.from_numpy(goldens_a.inputs["ego_future_xyz"][:, 0]).to(dtype)
    fut_rot = torch.from_numpy(goldens_a.inputs["ego_future_rot"][:, 0]).to(dtype)
    action = space.to(dtype).traj_to_action(xyz, rot, fut_xyz, fut_rot)
    # README: float32 Cholesky solves vs the f64 golden atol 2e-4 (normalised units); f64 vs f64 tight
    atol = 2e-4 if dtype == torch.float32 else 1e-9
    np.testing.assert_allclose(
        action.numpy(), goldens_a.action_space["future_action_normalized_f64"], rtol=0, atol=atol
    )


def test_rollout_action_to_traj_inputs_give_golden_waypoints(space, goldens_a) -> None:  # type: ignore[no-untyped-def]
    a = goldens_a.action_space
    xyz, rot = space.float().action_to_traj(
        torch.from_numpy(a["rollout_action_to_traj_action"]),
        torch.from_numpy(a["rollout_action_to_traj_hist_xyz"]),
        torch.from_numpy(a["rollout_action_to_traj_hist_rot"]),
    )
    np.testing.assert_allclose(xyz.numpy(), goldens_a.expert["pred_xyz"][:, 0, 0], rtol=0, atol=1e-4)
    np.testing.assert_allclose(rot.numpy(), goldens_a.expert["pred_rot"][:, 0, 0], rtol=0, atol=1e-5)


def test_wrong_future_length(space) -> None:  # type: ignore[no-untyped-def]
    z = torch.zeros(1, 16, 3)
    r = torch.eye(3).expand(1, 16, 3, 3)
    with pytest.raises(ValueError, match="64 poses"):
        space.float().traj_to_action(z, r, torch.zeros(1, 10, 3), torch.eye(3).expand(1, 10, 3, 3))


def test_action_in_proj(official_tiny_a, goldens_a) -> None:  # type: ignore[no-untyped-def]
    cfg = load_config(official_tiny_a)
    proj = PerWaypointActionInProj(cfg.action_in_proj, 2, 32)
    weights = load_file(str(official_tiny_a / "model.safetensors"))
    proj.load_state_dict(
        {k.removeprefix("action_in_proj."): v.float() for k, v in weights.items() if k.startswith("action_in_proj.")}
    )
    a = goldens_a.action_space
    with torch.no_grad():
        out = proj(torch.from_numpy(a["action_in_proj_x"]), torch.from_numpy(a["action_in_proj_t"]))
        feats = proj.timestep_fourier_encoder(torch.tensor([0.7]))
    np.testing.assert_allclose(out.numpy(), a["action_in_proj_out"], rtol=0, atol=1e-4)  # README: in_proj atol 1e-4
    np.testing.assert_allclose(feats.numpy(), a["fourier_timestep_features_t0.7"], rtol=0, atol=1e-5)
