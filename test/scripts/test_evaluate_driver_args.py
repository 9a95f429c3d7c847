"""scripts/evaluate_driver.py refuses an unknown scenario name before it loads a model or renders a bag."""

from __future__ import annotations

import pytest


def test_unknown_scenario_is_refused_before_the_model_loads(capsys: pytest.CaptureFixture[str]) -> None:
    import evaluate_driver

    with pytest.raises(SystemExit) as exit_info:
        # a model path that does not exist: were it loaded first, this would fail on the model instead
        evaluate_driver.main(["--scenarios", "lead_vehicle_braking", "moon_landing", "--proxy", "--model", "/nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown scenario moon_landing" in err and "Traceback" not in err
