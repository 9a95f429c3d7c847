"""The Euler sampler runs on the official time grid: t_i and t_{i+1} - t_i of ``linspace(0, 1, N + 1)``, bit for bit,
for step counts that divide 1 evenly in float32 and for those that do not."""

from __future__ import annotations

import pytest
import torch

from alpamayo_ros.model.flow_matching import euler_sample, time_grid


@pytest.mark.parametrize("num_steps", [1, 3, 6, 7, 10, 12, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_times_and_steps_are_the_linspace_grid_bit_for_bit(num_steps: int, dtype: torch.dtype) -> None:
    official = torch.linspace(0.0, 1.0, num_steps + 1, dtype=dtype)
    seen: list[torch.Tensor] = []

    def unit_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert t.shape == (x.shape[0], 1, 1) and t.dtype == dtype
        seen.append(t.clone())
        return torch.ones_like(x)

    x0 = torch.zeros(2, 64, 2, dtype=dtype)
    x1 = euler_sample(unit_velocity, x0, num_steps)
    assert torch.equal(torch.stack([t[0, 0, 0] for t in seen]), official[:-1])
    assert all(torch.equal(t, t[:1].expand_as(t)) for t in seen)  # every row gets the same time
    expected = torch.zeros((), dtype=dtype)  # with v = 1, x accumulates exactly the step sizes, in order
    for step in torch.diff(official):
        expected = expected + step
    assert torch.equal(x1, expected.expand_as(x1))
    assert torch.equal(time_grid(num_steps, torch.device("cpu"), dtype), official)


def test_grid_differs_from_i_over_n_where_float32_rounds() -> None:
    """Why the grid matters: for 6 steps a time differs, for 10 the step sizes do (what ``i / N`` would give)."""
    six = torch.linspace(0.0, 1.0, 7)
    assert not torch.equal(six, torch.tensor([i / 6 for i in range(7)], dtype=torch.float32))
    ten_steps = torch.diff(torch.linspace(0.0, 1.0, 11))
    assert not torch.equal(ten_steps, torch.full((10,), 1 / 10, dtype=torch.float32))


def test_state_dependent_velocity_matches_the_official_update() -> None:
    """x_{i+1} = x_i + (t_{i+1} - t_i) v(x_i, t_i) with a velocity that reads both x and t."""
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 64, 2, generator=generator)
    weight = torch.randn(2, 2, generator=generator)

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x @ weight * (1.0 - t) + t

    grid = torch.linspace(0.0, 1.0, 7)
    expected = x0
    for i in range(6):
        expected = expected + (grid[i + 1] - grid[i]) * velocity(expected, grid[i].expand(3, 1, 1))
    assert torch.equal(euler_sample(velocity, x0, 6), expected)


def test_official_golden_steps_are_reproduced_bit_for_bit(goldens_a) -> None:  # type: ignore[no-untyped-def]
    """Fed fixture A's recorded velocities, every step lands exactly on the official next x; ``1 / N`` steps do not."""
    expert = goldens_a.expert
    inputs = torch.from_numpy(expert["step_x"])  # (N, B, 64, 2): x entering step i
    velocities = torch.from_numpy(expert["step_velocity"])  # v(x_i, t_i) of the official run
    outputs = [*inputs[1:], torch.from_numpy(expert["sampled_action"])]
    num_steps = inputs.shape[0]
    step = iter(range(num_steps))

    def recorded_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        i = next(step)
        assert torch.equal(x, inputs[i]), f"step {i} starts off the official x"
        return velocities[i]

    assert torch.equal(euler_sample(recorded_velocity, inputs[0], num_steps), outputs[-1])
    uniform_steps = [torch.equal(inputs[i] + (1.0 / num_steps) * velocities[i], outputs[i]) for i in range(num_steps)]
    assert not all(uniform_steps)


def test_zero_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="num_steps must be >= 1, got 0"):
        euler_sample(lambda x, t: x, torch.zeros(1, 64, 2), 0)
