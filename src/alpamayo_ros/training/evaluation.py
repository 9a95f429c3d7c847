"""Held-out evaluation of a checkpoint on synthetic bags, per scenario, through ``tools.evaluate``'s own functions.

``python -m alpamayo_ros.training.evaluation --model DIR --bags out/eval_bags`` synthesises the bags it lacks
(seeds >= 1000, 20 s: seeds and an episode length the training never used, rendered at another resolution) and
scores them with ``tools.evaluate.evaluate_bag`` / ``summarize`` (the node's sync, ego history and consistency
monitor). The model is loaded with ``training.driver.load_driving_model`` because ``alpamayo-ros evaluate`` loads
through ``model.inference.load_torch_model``, which does not yet read a checkpoint's own tokenizer and rig.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EVAL_SEEDS: tuple[int, ...] = (1000, 1001)
EVAL_SECONDS = 20.0
EVAL_WH = (320, 180)


def ensure_bags(root: Path, scenarios: list[str], seeds: tuple[int, ...], progress: bool) -> dict[str, list[Path]]:
    """scenario -> bag directories under ``root`` (synthesised when missing)."""
    from alpamayo_ros.tools.scenarios import generate
    from alpamayo_ros.tools.synth import write_scenario_bag

    out: dict[str, list[Path]] = {}
    for name in scenarios:
        for seed in seeds:
            bag = root / f"{name}_s{seed}"
            if not (bag / "metadata.yaml").is_file():
                if bag.exists():
                    import shutil

                    shutil.rmtree(bag)
                bag.parent.mkdir(parents=True, exist_ok=True)
                write_scenario_bag(generate(name, seed, EVAL_SECONDS, *EVAL_WH), bag, progress=progress)
            out.setdefault(name, []).append(bag)
    return out


def table_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks for, from a ``tools.evaluate.summarize`` dict."""
    m, b, ag = summary["model_metrics"], summary["baseline_metrics"], summary["agreement"]
    dec = ag["decision_vs_reference"]
    return {
        "ticks": summary["ticks"]["scored"],
        "ade_1s": m["ade"]["1s"],
        "ade_3s": m["ade"]["3s"],
        "ade_6.4s": m["ade"]["6.4s"],
        "min_ade_6.4s": m["min_ade"]["6.4s"],
        "cv_ade_1s": b["ade"]["1s"],
        "cv_ade_3s": b["ade"]["3s"],
        "cv_ade_6.4s": b["ade"]["6.4s"],
        "ade_6.4s_vs_cv": m["ade"]["6.4s"] / b["ade"]["6.4s"] - 1.0 if b["ade"]["6.4s"] > 0 else None,
        "decision_acc_both": dec["both"],
        "decision_acc_lon": dec["longitudinal"],
        "decision_acc_lat": dec["lateral"],
        "agreement": ag["reasoning_action_agree_rate"],
        "agreement_compared": ag["reasoning_action_compared"],
        "reference_vs_gt": ag["reference_vs_ground_truth_trajectory"],
    }


def markdown(rows: dict[str, dict[str, Any]]) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.0f} %"

    lines = [
        "| scenario | ticks | ADE@1s model / CV (m) | ADE@3s model / CV | ADE@6.4s model / CV | vs CV | "
        "decision acc. (both / lon / lat) | agreement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        vs = "n/a" if r["ade_6.4s_vs_cv"] is None else f"{100 * r['ade_6.4s_vs_cv']:+.0f} %"
        lines.append(
            f"| {name} | {r['ticks']} | {r['ade_1s']:.2f} / {r['cv_ade_1s']:.2f} | {r['ade_3s']:.2f} / "
            f"{r['cv_ade_3s']:.2f} | {r['ade_6.4s']:.2f} / {r['cv_ade_6.4s']:.2f} | {vs} | "
            f"{pct(r['decision_acc_both'])} / {pct(r['decision_acc_lon'])} / {pct(r['decision_acc_lat'])} | "
            f"{pct(r['agreement'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alpamayo_ros.training.evaluation", description=__doc__)
    parser.add_argument("--model", default="default", help="checkpoint directory ('default' = the shipped one)")
    parser.add_argument("--bags", type=Path, default=Path("out/eval_bags"))
    parser.add_argument("--out", type=Path, default=Path("out/eval_small_driver"))
    parser.add_argument("--scenarios", nargs="*", default=None)
    parser.add_argument("--seeds", type=int, nargs="*", default=list(EVAL_SEEDS))
    parser.add_argument("--max-ticks", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--synth-only", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from alpamayo_ros.runtime.spec import ModelSpec
    from alpamayo_ros.tools.evaluate import evaluate_bag, summarize
    from alpamayo_ros.tools.scenarios import SCENARIOS
    from alpamayo_ros.training.driver import load_driving_model

    torch.set_num_threads(args.threads)
    scenarios = list(args.scenarios or SCENARIOS)
    bags = ensure_bags(args.bags, scenarios, tuple(args.seeds), progress=True)
    if args.synth_only:
        return 0
    model = load_driving_model(ModelSpec(model_path=args.model, device=args.device))
    rows: dict[str, dict[str, Any]] = {}
    all_evals = []
    started = time.time()
    desc = {"name": model.info.name, "version": model.info.version, "model_path": args.model}
    try:
        for name, paths in bags.items():
            evals = [evaluate_bag(p, model, max_ticks=args.max_ticks, report_ticks=0, progress=False) for p in paths]
            all_evals += evals
            rows[name] = table_row(summarize(evals, desc))
            print(f"{name}: {json.dumps(rows[name])}", flush=True)
    finally:
        model.close()
    overall = summarize(all_evals, desc)
    rows["all"] = table_row(overall)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.json").write_text(json.dumps({"model": desc, "seeds": args.seeds, "rows": rows}, indent=1))
    (args.out / "metrics.json").write_text(json.dumps(overall, indent=1))
    table = markdown(rows)
    (args.out / "table.md").write_text(table + "\n")
    print(table)
    print(f"evaluated in {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
