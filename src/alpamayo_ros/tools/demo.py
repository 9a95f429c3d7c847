"""`alpamayo-ros demo`: the whole loop on one machine, over real ROS 2 pub/sub between processes.

1. generate a scenario bag (cached under OUT/bags by its parameters);
2. start the node (child process, the package's default model unless --backend/--model say otherwise, sim time);
3. start the recorder on the node's outputs and wait until it is subscribed;
4. start the player (bag -> DDS with /clock) once the node's camera and odometry subscriptions exist;
5. when the player is done and the node has gone quiet, stop everything cleanly (SIGINT);
6. score the recorded outputs against the bag's ground truth (evaluate --predictions) and write the report.

Each child's output goes to OUT/run/<name>.log. Topics: the bag's /cameras/<camera>/image_raw and /odom are
mapped onto the node's inputs with ROS parameters and a remap, exactly as one would on a robot.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import numpy as np

from alpamayo_ros.core.model_spec import BACKENDS, ModelSpec
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.sim import SCENARIOS
from alpamayo_ros.tools import bagio
from alpamayo_ros.tools.cli_checks import number_problem, output_path_problem

NODE_NAME = "alpamayo_node"
OUTPUT_TOPICS = (f"/{NODE_NAME}/output/path", f"/{NODE_NAME}/output/reasoning", f"/{NODE_NAME}/debug/stage_latency")
ANCHOR = "camera_front_wide_120fov"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--scenario", choices=SCENARIOS, default="lead_vehicle_braking")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=540)
    parser.add_argument("--compressed", action="store_true", help="JPEG camera topics instead of raw rgb8")
    parser.add_argument("--backend", choices=BACKENDS, default=ModelSpec.backend)
    parser.add_argument("--model", default=ModelSpec.model_path, help="checkpoint directory or preset name")
    parser.add_argument("--device", default=ModelSpec.device)
    parser.add_argument("--max-reasoning-tokens", type=int, default=0, help="node parameter (0: node default)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.5,
        help="playback rate; < 1 gives a slow CPU model time to plan more of the ticks",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=5.0,
        help="after playback, stop once the node published nothing for this long, or for 1.5x the longest gap "
        "seen between its plans (whichever is longer: a slow model's last plan)",
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="model load + warm-up limit (s)")


class Child:
    """A child process whose combined output is copied to a log file (and kept for readiness checks)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.lines: list[str] = []
        self.line_times: list[float] = []  # monotonic arrival time of each line
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[str] = self.log_path.open("w")
        self._log.write(" ".join(cmd) + "\n")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.line_times.append(time.monotonic())
            self._log.write(line)
            self._log.flush()

    def saw(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def wait_for(self, text: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.saw(text):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)
                return self.saw(text)
            time.sleep(0.1)
        return False

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGINT and wait; SIGKILL (said in the log) if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.lines.append(f"[demo] {self.name} did not stop on SIGINT within {timeout_s:.0f} s: killed")
        self._thread.join(timeout=5)
        self._log.close()
        return int(self.proc.returncode)

    def times_of(self, text: str) -> list[float]:
        return [t for t, line in zip(list(self.line_times), list(self.lines), strict=False) if text in line]

    def tail(self, n: int = 25) -> str:
        return "\n".join(self.lines[-n:])


def bag_cache_path(out: Path, args: argparse.Namespace) -> Path:
    from alpamayo_ros.sim.fingerprint import generator_fingerprint

    kind = "jpeg" if args.compressed else "raw"
    size = f"{args.width}x{args.height}_{kind}"
    return out / "bags" / f"{args.scenario}_seed{args.seed}_{args.seconds:g}s_{size}_{generator_fingerprint()}"


def ensure_bag(path: Path, args: argparse.Namespace) -> tuple[Path, bool]:
    """The scenario bag, generated unless a complete one with these parameters exists (returns (path, cached))."""
    if (path / "metadata.yaml").exists() and (path / "scenario.json").exists():
        return path, True
    if path.exists():
        shutil.rmtree(path)  # an interrupted earlier generation
    from alpamayo_ros.sim import generate
    from alpamayo_ros.tools.synth import write_scenario_bag

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    gen = generate(args.scenario, args.seed, args.seconds, args.width, args.height)
    write_scenario_bag(gen, tmp, compressed=args.compressed)
    tmp.rename(path)
    return path, False


def replay_params_yaml(compressed: bool) -> str:
    """Node parameters that map a synthetic bag's topics onto the node (a --params-file; also for ros2 run)."""
    lines = [
        "# alpamayo_node inputs for bags written by `alpamayo-ros synth` (generated by alpamayo-ros demo).",
        "# Odometry is remapped on the command line: -r /alpamayo_node/input/odometry:=/odom",
        f"{NODE_NAME}:",
        "  ros__parameters:",
        "    use_sim_time: true  # the player publishes /clock with the bag's time",
        "    cameras:",
    ]
    for cam in CAMERA_NAMES:
        lines += [f"      {cam}:", f'        topic: "{bagio.image_topic(cam, compressed)}"']
        if compressed:
            lines.append('        message_type: "compressed"')
    return "\n".join(lines) + "\n"


def node_command(args: argparse.Namespace, params_file: Path) -> list[str]:
    """`alpamayo-ros node` with the bag's topics mapped onto the node's inputs, sim time, and the model choice."""
    params_file.write_text(replay_params_yaml(args.compressed))
    params = [f"model.backend:={args.backend}", f"model.model_path:={args.model}", f"model.device:={args.device}"]
    if args.max_reasoning_tokens:
        params.append(f"model.max_reasoning_tokens:={args.max_reasoning_tokens}")
    cmd = [sys.executable, "-m", "alpamayo_ros.cli", "node", "--ros-args", "--params-file", str(params_file)]
    for p in params:
        cmd += ["-p", p]
    return [*cmd, "-r", f"/{NODE_NAME}/input/odometry:={bagio.ODOM_TOPIC}"]


def child_env(log_dir: Path) -> dict[str, str]:
    from alpamayo_ros.rosenv import apply_ros_defaults

    env = dict(os.environ)
    apply_ros_defaults(env)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_LOG_DIR", str(log_dir / "ros_logs"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for_quiet(recorder: Child, marker: str, idle_sec: float, limit_sec: float = 600.0) -> None:
    """Return once no plan arrived for max(idle_sec, 1.5 x the longest gap between plans so far).

    The node keeps at most one inference in flight, so its last plan comes at most one inference time after the
    last input; the gaps between its plans measure that time, whatever the model and the machine load.
    """
    started = time.monotonic()
    while time.monotonic() - started < limit_sec and recorder.proc.poll() is None:
        times = recorder.times_of(marker)
        gaps = np.diff(times) if len(times) > 1 else np.zeros(1)
        quiet = max(idle_sec, 1.5 * float(gaps.max()))
        last = times[-1] if times else started
        if time.monotonic() - last > quiet:
            return
        time.sleep(0.2)


def argument_problem(args: argparse.Namespace) -> str | None:
    """The first argument the demo cannot use, as one line (the scenario is checked as synth checks it)."""
    from alpamayo_ros.sim import generate

    try:  # cheap: validates the duration and image size, renders nothing
        generate(args.scenario, args.seed, args.seconds, args.width, args.height)
    except ValueError as exc:
        return str(exc)
    return (
        number_problem(args, 0, "--rate", "--startup-timeout", exclusive=True)
        or number_problem(args, 0, "--idle-timeout", "--max-reasoning-tokens")
        or output_path_problem("--out", args.out, directory=True)
    )


def run(args: argparse.Namespace) -> int:
    from alpamayo_ros.tools.evaluate import format_summary, model_path_problem, run_evaluation

    problem = model_path_problem(args.backend, args.model) or argument_problem(args)
    if problem is not None:  # before minutes of bag, node start-up and a configure that can only fail
        print(f"alpamayo-ros demo: {problem}", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    out: Path = args.out
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    print(
        f"[demo] 1/6 scenario bag: {args.scenario} seed {args.seed}, {args.seconds:g} s, {args.width}x{args.height}",
        flush=True,
    )
    bag, cached = ensure_bag(bag_cache_path(out, args), args)
    print(f"[demo]     {'cached' if cached else 'generated'}: {bag} ({time.monotonic() - t_start:.0f} s)", flush=True)

    env = child_env(run_dir)
    cli = [sys.executable, "-m", "alpamayo_ros.cli"]
    outputs_bag = run_dir / "node_outputs"
    children: list[Child] = []
    status = 0
    try:
        print(f"[demo] 2/6 node: backend {args.backend}, model {args.model} (log {run_dir / 'node.log'})", flush=True)
        node = Child("node", node_command(args, run_dir / "node_params.yaml"), env, run_dir)
        children.append(node)
        print("[demo] 3/6 recorder on the node outputs; waiting for the node to load its model", flush=True)
        recorder = Child(
            "recorder",
            [*cli, "record", "--out", str(outputs_bag), "--print-messages", *OUTPUT_TOPICS],
            env,
            run_dir,
        )
        children.append(recorder)
        if not recorder.wait_for("[record] ready", args.startup_timeout):
            print(
                f"[demo] the node did not come up within {args.startup_timeout:.0f} s.\n--- node log tail ---\n"
                f"{node.tail()}\n--- recorder log tail ---\n{recorder.tail()}",
                file=sys.stderr,
            )
            return 1
        t_ready = time.monotonic()
        print(f"[demo]     node ready after {t_ready - t_start:.0f} s", flush=True)
        anchor_topic = bagio.image_topic(ANCHOR, args.compressed)
        print(f"[demo] 4/6 player: {bag} at rate {args.rate} with /clock", flush=True)
        player = Child(
            "player",
            [
                *cli,
                "play",
                str(bag),
                "--clock",
                "100",
                "--rate",
                str(args.rate),
                "--wait-for-subscribers",
                anchor_topic,
                bagio.ODOM_TOPIC,
            ],
            env,
            run_dir,
        )
        children.append(player)
        play_limit = args.seconds / args.rate + 120.0
        try:
            player.proc.wait(play_limit)
        except subprocess.TimeoutExpired:
            print(f"[demo] player still running after {play_limit:.0f} s; stopping it", file=sys.stderr)
        player.stop()
        print("[demo] 5/6 waiting for the node's last plan, then stopping", flush=True)
        wait_for_quiet(recorder, f"message {OUTPUT_TOPICS[0]} ", args.idle_timeout)
        recorder.stop()
        node.stop()
    finally:
        for child in children:
            if child.proc.poll() is None:
                child.stop()
    if not (outputs_bag / "metadata.yaml").exists():
        print(f"[demo] no outputs were recorded.\n--- node log tail ---\n{children[0].tail()}", file=sys.stderr)
        return 1
    topics = {t.topic: t.count for t in bagio.bag_topics(outputs_bag)}
    if not topics.get(OUTPUT_TOPICS[0]):
        print(f"[demo] the node published no plan.\n--- node log tail ---\n{children[0].tail(40)}", file=sys.stderr)
        status = 1
    print("[demo] 6/6 evaluation of the recorded outputs", flush=True)
    report_dir = out / "report"
    if report_dir.exists():
        shutil.rmtree(report_dir)
    summary = run_evaluation([bag], report_dir, None, predictions=outputs_bag, progress=False)
    wall = time.monotonic() - t_start
    model = summary["model"]
    print()
    print(f"model: {model.get('name', '?')} {model.get('version', '')} (backend {args.backend}, {args.model})")
    print(
        f"plans published by the node: {topics.get(OUTPUT_TOPICS[0], 0)} "
        f"(bag: {summary['ticks']['anchor_frames']} anchor frames, played at rate {args.rate})"
    )
    print(format_summary(summary))
    print()
    print(f"scenario bag:   {bag}")
    print(f"node outputs:   {outputs_bag}")
    print(f"logs:           {run_dir}/{{node,player,recorder}}.log (node parameters: {run_dir / 'node_params.yaml'})")
    print(f"report:         {report_dir / 'report.html'}")
    print(f"metrics:        {report_dir / 'metrics.json'}")
    print(f"wall time:      {wall:.0f} s")
    return status
