"""Flow-matching sampler: Euler from Gaussian noise (t = 0) to data (t = 1) on the official time grid.

The grid is ``linspace(0, 1, N + 1)`` in the sample's dtype and each step is ``x += (t_{i+1} - t_i) v(x, t_i)``,
exactly as the official integrator computes it. ``i / N`` and ``1 / N`` are not the same numbers: for N = 6 one
grid point differs by one float32 ulp, and for N = 10 the grid agrees but eight of the ten step sizes differ, so a
sampler built on them drifts from the official trajectories by rounding alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def initial_noise(
    batch: int, dims: tuple[int, int], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """x_0 ~ N(0, I), drawn on the generator's device (CPU generators give device-independent noise)."""
    gen_device = generator.device if generator is not None else device
    noise = torch.randn((batch, *dims), generator=generator, device=gen_device, dtype=torch.float32)
    return noise.to(device=device, dtype=dtype)


def time_grid(num_steps: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The N + 1 flow times t_0 = 0 ... t_N = 1 (unitless), shape (N + 1,); step i runs from t_i to t_{i+1}.

    Raises:
        ValueError: ``num_steps`` < 1.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return torch.linspace(0.0, 1.0, num_steps + 1, device=device, dtype=dtype)


def euler_sample(velocity: VelocityFn, x0: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Integrate dx/dt = v(x, t) from t = 0 to 1 in ``num_steps`` Euler steps; t is passed as (B, 1, 1)."""
    grid = time_grid(num_steps, x0.device, x0.dtype)
    x = x0
    for i in range(num_steps):
        t = grid[i].expand(x.shape[0], 1, 1)
        x = x + (grid[i + 1] - grid[i]) * velocity(x, t)
    return x
