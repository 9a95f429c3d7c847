"""Flow-matching sampler: Euler from Gaussian noise (t = 0) to data (t = 1), t_i = i / N, x += v(x, t_i) / N."""

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


def euler_sample(velocity: VelocityFn, x0: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Integrate dx/dt = v(x, t) from t = 0 to 1 in ``num_steps`` Euler steps; t is passed as (B, 1, 1)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    x = x0
    dt = 1.0 / num_steps
    for i in range(num_steps):
        t = torch.full((x.shape[0], 1, 1), i / num_steps, device=x.device, dtype=x.dtype)
        x = x + dt * velocity(x, t)
    return x
