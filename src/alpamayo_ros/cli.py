"""`alpamayo-ros` command line: one entry point for every node and tool of the package.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``; modules
are imported only when their subcommand runs, so `alpamayo-ros --help` stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "node": ("alpamayo_ros.nodes.node_main", "run the planning node (lifecycle, autostart by default)"),
    "synth": ("alpamayo_ros.tools.synth", "generate a seven-camera driving scenario as a rosbag2 bag"),
    "play": ("alpamayo_ros.tools.play", "publish a bag's messages with their recorded timing (ros2 bag play)"),
    "record": ("alpamayo_ros.tools.record", "record topics into a rosbag2 bag (ros2 bag record)"),
    "evaluate": ("alpamayo_ros.tools.evaluate", "open-loop evaluation of bags: metrics JSON + HTML report"),
    "demo": ("alpamayo_ros.tools.demo", "the main job: synth -> play -> node -> record -> evaluate -> report"),
    "sim": ("alpamayo_ros.tools.sim", "closed-loop simulation: the node drives, the world answers (metrics, JUnit)"),
    "build-engines": ("alpamayo_ros.runtime.build_engines", "export ONNX and build TensorRT engines, then exit"),
    "train": ("alpamayo_ros.tools.train", "train the small reasoning driver on synthetic scenarios"),
    "collect": ("alpamayo_ros.tools.collect", "closed-loop training data: the node drives, the expert labels (DAgger)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alpamayo-ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 2
        parser.parse_args(argv)  # prints the usage error for an unknown command and exits 2
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            print(f"alpamayo-ros {name}: not available in this build ({module_name} is missing)", file=sys.stderr)
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"alpamayo-ros {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
