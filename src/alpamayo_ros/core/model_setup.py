"""Bring a model up for planning: load it, fit the input buffers to it, run one warm-up inference.

The node's configure transition and the simulator's in-process driver do the same three steps, so a model that would
fail in one fails in the other with the same reason. Loading goes through a caller-given function (the runtime
registry in the product, a stand-in in tests), so this module imports no runtime and no torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from alpamayo_ros.core.intake import InputIntake
from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.core.planning import sync_config, synthetic_input
from alpamayo_ros.core.types import DrivingModel

ModelLoader = Callable[[ModelSpec], DrivingModel]


class ModelSetupError(RuntimeError):
    """The model cannot plan with these settings; the message says which step failed and why."""


def prepare_model(
    load_model: ModelLoader, params: NodeParams, intake: InputIntake, log: Callable[[str], None]
) -> DrivingModel:
    """Load ``params.model``, configure ``intake`` for it and (``model.warmup``) run one synthetic inference.

    Raises:
        ModelSetupError: the load failed (never silently replaced by another backend), the synchronisation settings do
            not fit the model's cameras and frame times, or the warm-up inference raised. The model is closed.
    """
    spec = params.model
    log(f"loading model: backend={spec.backend} model_path={spec.model_path} device={spec.device}")
    started = time.perf_counter()
    try:
        model = load_model(spec)
    except Exception as exc:  # any loader failure is reported with its type
        raise ModelSetupError(f"model load failed ({spec.backend}, {spec.model_path}): {exc}") from exc
    info = model.info
    log(
        f"model loaded in {time.perf_counter() - started:.1f} s: {info.name} {info.version}"
        f"{' (UNTRAINED)' if info.untrained else ''}; cameras {', '.join(info.cameras)}; "
        f"frames at {info.frame_offsets_sec} s; image size {info.image_size_hw or 'native'}"
    )
    try:
        intake.configure(sync_config(params.sync, info), params.ego, params.input)
    except ValueError as exc:
        model.close()
        raise ModelSetupError(f"synchronisation settings do not fit the model: {exc}") from exc
    if spec.warmup:
        started = time.perf_counter()
        try:
            model.predict(synthetic_input(info.image_size_hw, info.cameras, info.frame_offsets_sec))
        except Exception as exc:  # a model that cannot run one inference is not ready
            model.close()
            raise ModelSetupError(f"warm-up inference failed: {type(exc).__name__}: {exc}") from exc
        log(f"warm-up inference done in {(time.perf_counter() - started) * 1e3:.0f} ms")
    return model
