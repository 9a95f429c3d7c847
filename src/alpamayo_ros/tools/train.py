"""`alpamayo-ros train`: train the small reasoning driver on synthetic seven-camera scenarios (CPU, ~1 h).

Pipeline: render the training episodes with the scenario generator (cached as npz), build the small CoC tokenizer,
build the Alpamayo-R1 module at a small size (training.checkpoint.DriverSize), then train the language loss on the
reference reasoning and the flow-matching loss on the ego's future actions jointly (training.objective), with a
fixed seed, a tqdm bar, a JSON-lines log and periodic checkpoints; the result is written in the official checkpoint
layout (default: ``out/driver_base``; never into the package, whose driver a run must not replace unasked). The
defaults reproduce the shipped driver's first stage; ``scripts/recipes/closed_loop_finetune.yaml`` (one DAgger round
on top of it) reproduces the shipped driver, and ``scripts/train_default_driver.sh`` runs the whole chain.

Two training-only measures make the model read its cameras instead of the ego's past motion (which predicts the next
seconds well enough for a small model to stop looking): half of each batch gets a straight history at its own speed
(``--history-dropout``), and a probe on the image tokens alone must name the label's evidence (``--scene-loss``,
training.scene_probe). Neither is part of the checkpoint or of inference.

The model size, the data plan and the optimiser settings form the training recipe (training.recipe): the shipped
driver's first stage by default, or ``--recipe FILE.yaml`` naming what an experiment changes (examples in
scripts/recipes/).

The learning-rate schedule runs on progress = max(step / steps, elapsed / max-minutes), so a run on a busy machine
still anneals and finishes on time; on an idle machine it ends by step count and is reproducible from the seed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpamayo_ros.tools.cli_checks import number_problem, output_path_problem
from alpamayo_ros.training.checkpoint import PACKAGE_MODEL_DIR
from alpamayo_ros.training.resume import RESUME_FILE

if TYPE_CHECKING:
    from alpamayo_ros.training.recipe import Recipe
    from alpamayo_ros.training.resume import TrainingState


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/driver_base"), help="checkpoint directory to write")
    parser.add_argument("--work", type=Path, default=Path("out/train_run"), help="log + resumable checkpoints")
    parser.add_argument("--cache", type=Path, default=Path("out/train_cache"), help="rendered samples (npz)")
    parser.add_argument(
        "--recipe",
        type=Path,
        default=None,
        metavar="FILE.yaml",
        help="training recipe: model size, data plan and optimiser settings an experiment changes (schema: "
        "training.recipe; default: the shipped driver's first stage)",
    )
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--max-minutes", type=float, default=55.0, help="training time budget (rendering excluded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu (the supported run) or cuda (recipe checks)")
    parser.add_argument("--render-workers", type=int, default=2)
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between validation losses")
    parser.add_argument(
        "--history-dropout",
        type=float,
        default=0.5,
        help="share of samples whose ego history is replaced by a straight one at the same speed (so the "
        "reasoning must come from the cameras)",
    )
    parser.add_argument(
        "--scene-loss",
        type=float,
        default=1.0,
        help="weight of an auxiliary loss that asks the image tokens alone which evidence the label cites (a "
        "training-only probe, training.scene_probe; 0 = off)",
    )
    parser.add_argument("--resume", action="store_true", help=f"continue from --work/{RESUME_FILE}")
    parser.add_argument("--quiet", action="store_true")


def lr_at(progress: float, step: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine from ``base`` to 5 % of it over ``progress`` in [0, 1]."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def argument_problem(args: argparse.Namespace) -> str | None:
    """The first argument training cannot use, as one line, before minutes of rendering."""
    counts = ("--steps", "--threads", "--render-workers", "--checkpoint-every", "--eval-every")
    return (
        number_problem(args, 1, *counts)
        or number_problem(args, 0, "--max-minutes", exclusive=True)
        or output_path_problem("--out", args.out, directory=True)
        or output_path_problem("--work", args.work, directory=True)
        or output_path_problem("--cache", args.cache, directory=True)
    )


def run(args: argparse.Namespace) -> int:
    problem = argument_problem(args)
    if problem is not None:
        print(f"alpamayo-ros train: {problem}", file=sys.stderr)
        return 2
    import numpy as np
    import torch
    from tqdm import tqdm

    from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
    from alpamayo_ros.model.loader import TIED_KEY
    from alpamayo_ros.sim.labels import rests_on_unseen_speed
    from alpamayo_ros.training.checkpoint import (
        ActionStats,
        StartingPointError,
        build_config,
        checkpoint_config,
        save_checkpoint,
        starting_point,
    )
    from alpamayo_ros.training.closed_loop_samples import ClosedLoopDataError, open_closed_loop_data
    from alpamayo_ros.training.collate import Collator
    from alpamayo_ros.training.data import (
        DataSpec,
        Episode,
        SampleSet,
        build_cache,
        load_samples,
        training_episodes,
        validation_episodes,
    )
    from alpamayo_ros.training.objective import joint_loss
    from alpamayo_ros.training.recipe import RecipeError, load_recipe
    from alpamayo_ros.training.resume import TrainingState, save_training_state
    from alpamayo_ros.training.scene_probe import SceneProbe, SceneVocab
    from alpamayo_ros.training.vocab import build_tokenizer

    try:
        recipe = load_recipe(args.recipe)
    except RecipeError as exc:
        raise SystemExit(str(exc)) from None
    if not 0.0 <= args.history_dropout < 1.0:
        raise SystemExit(f"--history-dropout {args.history_dropout}: must be in [0, 1)")
    if not (math.isfinite(args.scene_loss) and args.scene_loss >= 0.0):
        raise SystemExit(f"--scene-loss {args.scene_loss}: must be a finite weight >= 0")
    last = args.work / RESUME_FILE
    resumed = _resumable_state(last, recipe, args.scene_loss) if args.resume and last.is_file() else None
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    size = recipe.driver_size()
    spec = DataSpec(image_hw=size.image_hw, frame_offsets_sec=size.frame_offsets_sec)
    start = None  # the checkpoint a fine-tuning starts from, checked before minutes of rendering
    if recipe.init_from:
        init_dir = PACKAGE_MODEL_DIR if recipe.init_from == "default" else Path(recipe.init_from)
        try:
            start = starting_point(init_dir, size)
        except StartingPointError as exc:
            raise SystemExit(str(exc)) from None
    try:  # checked before minutes of rendering, as the starting point is
        closed_loop = [open_closed_loop_data(Path(name), spec) for name in recipe.closed_loop_data]
    except ClosedLoopDataError as exc:
        raise SystemExit(str(exc)) from None
    closed_loop_eps = [
        (path, Episode(ep.scenario, ep.seed, ep.seconds, ep.distribution))
        for data in closed_loop
        for path, ep in data.files
    ]
    train_eps = training_episodes(recipe.seeds_target, recipe.seeds_other, recipe.distribution)
    val_eps = validation_episodes(recipe.distribution)
    progress = not args.quiet
    paths = build_cache(spec, [*val_eps, *train_eps], args.cache, args.render_workers, progress)
    train_paths = [*paths[len(val_eps) :], *(path for path, _ in closed_loop_eps)]
    left_out = 0

    def seen_speed(text: str) -> bool:
        nonlocal left_out
        unseen = rests_on_unseen_speed(text)
        left_out += unseen
        return not unseen

    keep = seen_speed if recipe.drop_unseen_speed else None
    train = load_samples(train_paths, [*train_eps, *(ep for _, ep in closed_loop_eps)], keep)
    val = load_samples(paths[: len(val_eps)], val_eps)
    render_min = (time.time() - started) / 60.0
    closed_loop_samples = sum(data.samples for data in closed_loop)
    print(
        f"data: {len(train)} training samples ({len(train_eps)} episodes"
        + (f", {closed_loop_samples} closed-loop samples of {len(closed_loop_eps)} rollouts" if closed_loop else "")
        + (f", {left_out} left out whose only reason to slow down is the unseen cruise speed" if keep else "")
        + f"), {len(val)} validation samples; ready after {render_min:.1f} min",
        flush=True,
    )

    if start is not None:  # fine-tuning keeps the vocabulary and action normalisation its weights were trained on
        tokenizer, stats = start.tokenizer, start.stats
    else:
        accel, curvature = train.actions[..., 0], train.actions[..., 1]
        stats = ActionStats(float(accel.mean()), float(accel.std()), float(curvature.mean()), float(curvature.std()))
        corpus = sorted(set(train.texts) | set(val.texts) | {f"is {d} m away. {d} m ahead" for d in range(200)})
        tokenizer = build_tokenizer(corpus, size.future_bins + size.history_bins)
    cfg, _, vlm = build_config(size, tokenizer, stats)
    device = torch.device(args.device)
    model = AlpamayoR1(cfg).to(device).train()
    if start is not None:
        missing, unexpected = model.load_state_dict(start.weights, strict=False)
        if unexpected or set(missing) - {TIED_KEY}:
            raise SystemExit(
                f"init_from {recipe.init_from}: weights do not fit the model ({[*unexpected, *missing][:5]})"
            )
        model.tie_embeddings()
        print(f"starting from {recipe.init_from}", flush=True)
    else:
        with torch.no_grad():  # start the flow near zero velocity (as the official fixtures scale the head)
            model.action_out_proj.weight.mul_(0.1)
    n_params = sum(p.numel() for p in model.parameters())
    collate = Collator.for_config(tokenizer, cfg)
    scene_vocab = SceneVocab(train.texts) if args.scene_loss > 0 else None
    probe = SceneProbe(size.text_hidden, len(scene_vocab)).to(device) if scene_vocab is not None else None
    trained = [*model.parameters(), *(probe.parameters() if probe is not None else ())]
    optimizer = torch.optim.AdamW(trained, lr=recipe.learning_rate, weight_decay=0.01, betas=(0.9, 0.98))

    def scene_of(data: SampleSet, idx: np.ndarray) -> tuple[SceneProbe, torch.Tensor] | None:
        """The probe and its multi-hot targets for these samples, when the scene loss is on."""
        if probe is None or scene_vocab is None:
            return None
        return probe, scene_vocab.targets([data.texts[i] for i in idx])

    args.work.mkdir(parents=True, exist_ok=True)
    step = 0
    batch_rng = np.random.default_rng(args.seed)
    noise_generator = torch.Generator(device).manual_seed(args.seed)
    if resumed is not None:
        model.load_state_dict(resumed.model)
        if probe is not None and resumed.probe is not None:
            probe.load_state_dict(resumed.probe)
        optimizer.load_state_dict(resumed.optimizer)
        step = resumed.step
        batch_rng = resumed.batch_rng
        noise_generator.set_state(resumed.noise_generator)
        print(f"resumed at step {step}", flush=True)
    log_file = (args.work / "log.jsonl").open("a")
    print(
        f"model: {n_params / 1e6:.2f} M parameters, vocabulary {tokenizer.get_vocab_size()}; {args.steps} steps of "
        f"{recipe.batch_size}, budget {args.max_minutes} min",
        flush=True,
    )
    if scene_vocab is not None:
        print(f"scene probe: {len(scene_vocab)} evidence classes, weight {args.scene_loss}", flush=True)

    def validate() -> dict[str, float]:
        model.eval()
        validation_rng = np.random.default_rng(1234)
        out: dict[str, list[float]] = {"lm": [], "flow": [], "acc": [], **({"scene": []} if probe is not None else {})}
        validation_noise = torch.Generator(device).manual_seed(99)
        with torch.no_grad():
            for _ in range(4):
                idx = validation_rng.choice(len(val), recipe.batch_size, replace=False)
                parts = joint_loss(
                    model,
                    collate(val, idx).to(device),
                    collate.future_start_id,
                    flow_samples=1,
                    generator=validation_noise,
                    scene=scene_of(val, idx),
                )
                out["lm"].append(float(parts.lm))
                out["flow"].append(float(parts.flow))
                out["acc"].append(parts.token_accuracy)
                if parts.scene is not None:
                    out["scene"].append(float(parts.scene))
        model.train()
        return {f"val_{k}": float(np.mean(v)) for k, v in out.items()}

    def save_resumable() -> None:
        state = TrainingState(
            step=step,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            batch_rng=batch_rng,
            noise_generator=noise_generator.get_state(),
            recipe=recipe.as_plain(),
            probe=probe.state_dict() if probe is not None else None,
        )
        save_training_state(last, state)

    def export(final: bool, metrics: dict[str, Any]) -> Path:
        provenance = {
            "command": "alpamayo-ros train " + " ".join(sys.argv[2:]),
            "steps": step,
            "batch_size": recipe.batch_size,
            "lr": recipe.learning_rate,
            "seed": args.seed,
            "flow_samples": recipe.flow_samples,
            "recipe": recipe.as_plain(),
            "history_dropout": args.history_dropout,
            "scene_loss": args.scene_loss,
            "train_samples": len(train),
            "train_episodes": len(train_eps),
            **({"closed_loop_data": {str(d.directory): d.summary() for d in closed_loop}} if closed_loop else {}),
            "data": asdict(spec),
            "size": asdict(size),
            "final": final,
            "train_minutes": round((time.time() - train_start) / 60.0, 1),
            "metrics": metrics,
            **({"started_from": start.training} if start is not None else {}),
        }
        raw = checkpoint_config(size, tokenizer, stats, provenance)
        target = args.out if final else args.work / "export"
        return save_checkpoint(model, target, raw_config=raw, vlm=vlm, tok=tokenizer, size=size)

    train_start = time.time()
    budget = args.max_minutes * 60.0
    bar = tqdm(total=args.steps, initial=step, unit="step", desc="train", disable=not progress)
    ema: dict[str, float] = {}
    metrics: dict[str, Any] = {}
    while step < args.steps:
        elapsed = time.time() - train_start
        frac = max(step / args.steps, elapsed / budget)
        if frac >= 1.0:
            print(f"time budget reached at step {step}", flush=True)
            break
        lr = lr_at(frac, step, recipe.learning_rate, recipe.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = batch_rng.choice(len(train), recipe.batch_size, replace=False)
        drop = batch_rng.random(recipe.batch_size) < args.history_dropout if args.history_dropout > 0 else None
        parts = joint_loss(
            model,
            collate(train, idx, drop),
            collate.future_start_id,
            flow_samples=recipe.flow_samples,
            flow_weight=recipe.flow_weight,
            generator=noise_generator,
            scene=scene_of(train, idx),
            scene_weight=args.scene_loss,
        )
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()  # type: ignore[no-untyped-call]
        grad = float(torch.nn.utils.clip_grad_norm_(trained, 1.0))
        optimizer.step()
        step += 1
        values = {"lm": parts.lm.item(), "flow": parts.flow.item(), "acc": parts.token_accuracy}
        if parts.scene is not None:
            values["scene"] = parts.scene.item()
        for key, value in values.items():
            ema[key] = value if key not in ema else 0.95 * ema[key] + 0.05 * value
        bar.update(1)
        bar.set_postfix({k: f"{v:.2f}" if k == "acc" else f"{v:.3f}" for k, v in ema.items()} | {"lr": f"{lr:.1e}"})
        record: dict[str, Any] = {
            "step": step,
            "lr": lr,
            **values,
            "grad": grad,
            "sec": round(time.time() - train_start, 1),
        }
        if step % args.eval_every == 0:
            metrics = validate()
            record.update(metrics)
            bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        if step % args.checkpoint_every == 0:
            save_resumable()
            export(False, metrics)
    bar.close()
    metrics = validate()
    save_resumable()
    out = export(True, {**metrics, "train_lm_ema": ema.get("lm"), "train_flow_ema": ema.get("flow")})
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(
        f"saved {out} ({size_mb:.1f} MB) after {step} steps, {(time.time() - train_start) / 60:.1f} min training; "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
        flush=True,
    )
    log_file.close()
    return 0


def _resumable_state(path: Path, recipe: Recipe, scene_loss: float) -> TrainingState:
    """The state in ``path``, if this run can continue it (same recipe, scene probe on or off alike).

    Raises:
        SystemExit: unreadable state, or one trained under another recipe or the other scene-probe setting.
    """
    from alpamayo_ros.training.recipe import Recipe
    from alpamayo_ros.training.resume import ResumeError, load_training_state

    try:
        state = load_training_state(path)
    except ResumeError as exc:
        raise SystemExit(f"--resume: {exc}") from None
    if (state.probe is not None) != (scene_loss > 0):
        with_probe = state.probe is not None
        raise SystemExit(
            f"--resume: {path} was trained {'with' if with_probe else 'without'} the scene probe; "
            f"resume it with --scene-loss {'> 0' if with_probe else '0'} or start a new --work"
        )
    defaults = Recipe().as_plain()  # a key younger than the saved state counts as its default there
    saved_recipe = {**defaults, **state.recipe}
    changed = {key: value for key, value in recipe.as_plain().items() if saved_recipe.get(key) != value}
    if changed:
        saved = ", ".join(f"{key} {saved_recipe.get(key)}" for key in changed)
        raise SystemExit(
            f"--resume: {path} was trained with another recipe ({saved}); resume it with that recipe or start a new "
            "--work"
        )
    return state
