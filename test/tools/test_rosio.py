"""rosio.finish_ros: a hung ROS teardown never keeps a finished tool alive."""

from __future__ import annotations

import subprocess
import sys
import time

HUNG_TEARDOWN = """
import time
from alpamayo_ros.tools.rosio import finish_ros

class HungNode:
    def destroy_node(self):
        time.sleep(30)

class Rclpy:
    def try_shutdown(self):
        pass

finish_ros(Rclpy(), HungNode(), print, exit_code=7, timeout_sec=0.5)
print("not reached")
"""


def test_hung_teardown_exits_with_the_tools_code() -> None:
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", HUNG_TEARDOWN], capture_output=True, text=True, timeout=20, check=False)
    assert out.returncode == 7
    assert "ROS teardown still running after 0.5 s; exiting with code 7" in out.stdout
    assert "not reached" not in out.stdout
    assert time.monotonic() - started < 15


def test_quick_teardown_returns_normally() -> None:
    code = HUNG_TEARDOWN.replace("time.sleep(30)", "pass")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False)
    assert out.returncode == 0 and "not reached" in out.stdout


def test_teardown_hung_while_holding_the_gil_still_ends() -> None:
    """A C call that keeps the GIL (libc sleep through ctypes.PyDLL) starves the watchdog thread; the C-level
    backstop still ends the process at twice the timeout, with the stack of the hang on stderr."""
    code = HUNG_TEARDOWN.replace("time.sleep(30)", "import ctypes; ctypes.PyDLL(None).sleep(30)")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False)
    assert out.returncode == 1
    assert "Timeout (0:00:01)!" in out.stderr and "destroy_node" in out.stderr
    assert "not reached" not in out.stdout
    assert time.monotonic() - started < 15
