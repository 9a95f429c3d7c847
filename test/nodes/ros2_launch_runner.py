"""`ros2 launch PACKAGE FILE name:=value ...` for tests: the same ros2launch API calls, without ros2cli.

ros2cli (the `ros2` command) is not installable here, but ros2launch's API is what its `launch` verb runs:
find FILE in PACKAGE's share directory through the ament index, then launch it interactively (a terminal's
Ctrl-C reaches the whole process group, so launch lets its children handle SIGINT themselves first).
"""

from __future__ import annotations

import signal
import sys


def main(argv: list[str]) -> int:
    from ros2launch.api import get_share_file_path_from_package, launch_a_launch_file

    package, file_name, *arguments = argv
    # A process started in the background by a non-interactive shell inherits SIGINT ignored; a terminal's does not.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    path = get_share_file_path_from_package(package_name=package, file_name=file_name)
    return int(launch_a_launch_file(launch_file_path=path, launch_file_arguments=arguments, noninteractive=False))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
