"""Child process for the node pipeline tests: the real alpamayo_node, with its model wrapped so that predict()
raises while the file named by ALPAMAYO_TEST_FAIL_FILE exists. The product has no such switch: the test injects it
through the node's model loader, exactly where a broken backend would sit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from alpamayo_ros.core.types import DrivingModel, ModelInfo, ModelInput, Prediction
from alpamayo_ros.nodes.node_main import spin
from alpamayo_ros.runtime.registry import load_model


class InjectedFailureError(RuntimeError):
    """Raised by the wrapped model while the switch file exists."""


class SwitchableFailure:
    """Delegates to the configured model; raises while ``switch`` exists."""

    def __init__(self, inner: DrivingModel, switch: Path) -> None:
        self.inner, self.switch = inner, switch

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def predict(self, sample: ModelInput) -> Prediction:
        if self.switch.exists():
            raise InjectedFailureError(f"injected failure ({self.switch} exists)")
        return self.inner.predict(sample)

    def close(self) -> None:
        self.inner.close()


def main() -> int:
    switch = Path(os.environ["ALPAMAYO_TEST_FAIL_FILE"])
    return spin(["alpamayo_node", *sys.argv[1:]], load_model=lambda spec: SwitchableFailure(load_model(spec), switch))


if __name__ == "__main__":
    sys.exit(main())
