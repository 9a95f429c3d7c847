"""The Alpamayo seven-camera rig: names and the index order the model was trained with."""

from __future__ import annotations

# Index order of the rig as Alpamayo-R1 numbers it (its data loader's camera indices 0..6).
CAMERA_NAMES: tuple[str, ...] = (
    "camera_cross_left_120fov",
    "camera_front_wide_120fov",
    "camera_cross_right_120fov",
    "camera_rear_left_70fov",
    "camera_rear_tele_30fov",
    "camera_rear_right_70fov",
    "camera_front_tele_30fov",
)

# Alpamayo-R1 consumes four of the seven cameras, in this order (indices 0, 1, 2, 6).
ALPAMAYO_R1_CAMERAS: tuple[str, ...] = (
    "camera_cross_left_120fov",
    "camera_front_wide_120fov",
    "camera_cross_right_120fov",
    "camera_front_tele_30fov",
)

# Frame times relative to t0 that Alpamayo-R1 reads per camera, oldest first (seconds).
ALPAMAYO_R1_FRAME_OFFSETS_SEC: tuple[float, ...] = (-0.3, -0.2, -0.1, 0.0)

# Ego history: 16 poses at 10 Hz, t0-1.5 s .. t0. Future: 64 poses at 10 Hz, t0+0.1 s .. t0+6.4 s.
HISTORY_STEPS = 16
FUTURE_STEPS = 64
STEP_SEC = 0.1
