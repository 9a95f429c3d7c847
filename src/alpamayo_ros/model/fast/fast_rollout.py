"""The fast rollout: batched vision tower (one CUDA graph), prefill straight into the static KV buffer,
static-cache decode (one CUDA graph per step, replayed with no host sync; the stop rule is read every
``check_every`` steps), the whole flow loop as one CUDA graph.

Same inputs and :class:`~alpamayo_ros.model.rollout.RolloutResult` as ``run_rollout``; the subset of fields kept:
everything except ``expert_context`` / ``expert_steps`` (the static path has no DynamicCache and does not record the
per-step expert tensors); no ``on_logits`` hooks.
Greedy decoding gives the eager tokens; sampled decoding draws Gumbel noise from the caller's generator (same
distribution as the eager ``multinomial``, other draws). Buffers and graphs are built on the first call for a
(rows, prompt length, sampling, flow steps) shape and reused while it stays the same.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1, VisionOutput
from alpamayo_ros.model.fast.capture import Captured
from alpamayo_ros.model.fast.decode_graph import StaticDecoder, trim_reasoning
from alpamayo_ros.model.fast.expert_graph import StaticFlow
from alpamayo_ros.model.fast.fp8 import Fp8Linear, decode_shapes, probe_mode
from alpamayo_ros.model.fast.prefill import static_prefill
from alpamayo_ros.model.fast.static_cache import LayerLinears, StaticKV, layer_linears
from alpamayo_ros.model.fast.vision import StaticVision, uniform_grids
from alpamayo_ros.model.flow_matching import initial_noise
from alpamayo_ros.model.generation import DecodeTokens, SamplingConfig
from alpamayo_ros.model.rollout import (
    Intermediates,
    RolloutInputs,
    RolloutResult,
    RolloutSettings,
    StageClock,
    finish_rollout,
    prepare_prompt,
)


@dataclass(frozen=True)
class FastOptions:
    """What a user chooses (``model.fast_path``: on = bf16, fp8 = e4m3 weights for the reasoning decode's decoder
    linears, the kernel picked by ``fp8.probe_mode`` on the device). Benchmark variants live in ``scripts/``."""

    fp8_decode: bool = False


@dataclass
class _Plan:
    key: tuple[object, ...]
    kv: StaticKV
    decoder: StaticDecoder
    flow: StaticFlow
    step: Captured | None
    flow_run: Captured
    capture_ms: float


@dataclass
class FastInfo:
    fp8_mode: str = ""
    fp8_note: str = ""
    graphs: bool = False
    capture_ms: float = 0.0
    decode_steps: int = 0
    notes: list[str] = field(default_factory=list)


def _fp8_linears(lin: LayerLinears, layer: Any, mode: str) -> LayerLinears:
    attn, mlp = layer.self_attn, layer.mlp
    qkv = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
    gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
    return dataclasses.replace(
        lin,
        qkv=Fp8Linear(qkv, mode),
        o=Fp8Linear(attn.o_proj.weight, mode),
        gate_up=Fp8Linear(gate_up, mode),
        down=Fp8Linear(mlp.down_proj.weight, mode),
    )


class FastRollout:
    """The fast path bound to one model; call it like ``run_rollout`` (minus the hooks).

    ``share_weights``: the q/k/v and gate/up weights of the model's modules become views of the fused tensors (no
    second copy on the GPU); off, the fused tensors are copies and the modules stay untouched. Benchmark variants
    subclass this and override :meth:`_decoder` / :meth:`_flow` or set ``graphs`` / ``check_every``.
    """

    check_every = 8  # decode steps between reads of the device-side stop flag

    def __init__(
        self,
        model: AlpamayoR1,
        tokens: DecodeTokens,
        options: FastOptions | None = None,
        *,
        share_weights: bool = True,
    ) -> None:
        self.model, self.tokens = model, tokens
        self.options = options or FastOptions()
        self.info = FastInfo()
        self.graphs = model.device.type == "cuda"  # capture on CUDA; the CPU runs the same step functions eagerly
        self.lm_linears = [layer_linears(layer, share_weights) for layer in model.language_model.layers]
        self.expert_linears = [layer_linears(layer, share_weights) for layer in model.expert.layers]
        self.decode_linears = self.lm_linears
        if self.options.fp8_decode:
            first = self.lm_linears[0]
            hidden = int(model.language_model.config.hidden_size)
            shapes = decode_shapes(hidden, first.q_size, first.kv_size, first.intermediate)
            mode, note = probe_mode(model.device, shapes)
            self.info.fp8_mode, self.info.fp8_note = mode, note
            layers = model.language_model.layers
            self.decode_linears = [
                _fp8_linears(lin, layer, mode) for lin, layer in zip(self.lm_linears, layers, strict=True)
            ]
        self._plan: _Plan | None = None
        self._vision: tuple[bytes, StaticVision, Captured] | None = None

    def _decoder(self, kv: StaticKV, prompt_len: int, sampling: SamplingConfig) -> StaticDecoder:
        """The reasoning decode over ``kv`` (a benchmark overrides this to ban ids or swap the attention)."""
        return StaticDecoder(
            self.model, kv, self.decode_linears, prompt_len=prompt_len, sampling=sampling, tokens=self.tokens
        )

    def _flow(self, kv: StaticKV, flow_steps: int) -> StaticFlow:
        """The flow loop over ``kv`` (a benchmark overrides this to swap the attention)."""
        return StaticFlow(self.model, kv, self.expert_linears, flow_steps)

    def _encode_images(self, pixel_values: torch.Tensor, grids: torch.Tensor) -> VisionOutput:
        model = self.model
        if not uniform_grids(grids):
            return model.encode_images(pixel_values, grids)
        key = grids.cpu().numpy().tobytes()
        if self._vision is None or self._vision[0] != key:
            self._vision = None
            vision = StaticVision(model, grids)
            vision.load(pixel_values)
            run = Captured(vision, self.graphs, warmup=1)
            if run.error:
                self.info.notes.append(f"vision capture failed, running eagerly: {run.error}")
            self._vision = (key, vision, run)
        _, vision, run = self._vision
        vision.load(pixel_values)
        return StaticVision.split(run())

    def _get_plan(self, rows: int, prompt_len: int, sampling: SamplingConfig, flow_steps: int) -> _Plan:
        key = (rows, prompt_len, sampling, flow_steps)
        if self._plan is not None and self._plan.key == key:
            return self._plan
        self._plan = None  # free the old buffers and graphs first
        model = self.model
        device = model.device
        if device.type == "cuda":
            torch.cuda.empty_cache()
        cfg = model.language_model.config
        head_dim = int(getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads))
        kv = StaticKV.allocate(
            layers=int(cfg.num_hidden_layers), rows=rows, kv_heads=int(cfg.num_key_value_heads),
            capacity=prompt_len + sampling.max_new_tokens, n_action=model.n_action_tokens, head_dim=head_dim,
            device=device, dtype=model.dtype,
        )  # fmt: skip
        decoder = self._decoder(kv, prompt_len, sampling)
        flow = self._flow(kv, flow_steps)
        graphs = self.graphs
        started = time.perf_counter()
        steps = sampling.max_new_tokens - 1
        step = None
        if steps > 0:

            def rewind() -> None:
                decoder.step.zero_()

            step = Captured(decoder, graphs, warmup=min(2, steps), reset=rewind)
        flow_run = Captured(flow, graphs)
        capture_ms = (time.perf_counter() - started) * 1000.0
        captured = [c for c in (step, flow_run) if c is not None]
        self.info.graphs = graphs and all(c.captured for c in captured)
        self.info.capture_ms = capture_ms
        self.info.notes += [f"capture failed, running eagerly: {c.error}" for c in captured if c.error]
        self._plan = _Plan(key, kv, decoder, flow, step, flow_run, capture_ms)
        return self._plan

    @torch.inference_mode()
    def __call__(
        self,
        inputs: RolloutInputs,
        settings: RolloutSettings,
        *,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        keep_intermediates: bool = False,
    ) -> RolloutResult:
        model, tokens = self.model, self.tokens
        device = model.device
        clock = StageClock(device)
        cfg = model.cfg
        n = settings.num_samples
        fused, position_ids, rope_deltas = prepare_prompt(model, inputs, tokens)
        clock.lap("preprocess")

        vision = self._encode_images(inputs.pixel_values, inputs.image_grid_thw)
        if keep_intermediates:  # the graph's output buffer is rewritten by the next call
            vision = VisionOutput(vision.image_embeds.clone(), [d.clone() for d in vision.deepstack])
        clock.lap("vision")

        batch, prompt_len = (int(s) for s in fused.shape)
        rows = batch * n
        num_steps = settings.flow_steps or cfg.diffusion.num_inference_steps
        sampling = settings.sampling
        if sampling.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {sampling.max_new_tokens}")
        plan = self._get_plan(rows, prompt_len, sampling, num_steps)
        logits = static_prefill(model, self.lm_linears, plan.kv, fused, vision, position_ids=position_ids, repeat=n)
        prefill_logits = logits.clone() if keep_intermediates else None
        if n > 1:
            logits = logits.repeat_interleave(n, dim=0)
        row_deltas = rope_deltas.repeat_interleave(n, dim=0)
        clock.lap("prefill")

        decoder = plan.decoder
        decoder.reset(logits, row_deltas, generator)
        total = sampling.max_new_tokens - 1
        done = 0
        check = max(1, self.check_every)
        while done < total and plan.step is not None:
            for _ in range(min(check, total - done)):
                plan.step()
            done += min(check, total - done)
            if done < total and bool(decoder.done):
                break
        self.info.decode_steps = done
        reasoning = trim_reasoning(decoder.tokens_buf[:, : done + 1], tokens)
        sequences = torch.cat([fused.repeat_interleave(n, dim=0), reasoning.tokens], dim=1)
        clock.lap("decode")

        full_len = sequences.shape[1]
        is_start = sequences == tokens.future_start
        first = is_start.int().argmax(dim=1)
        offsets = torch.where(is_start.any(dim=1), first + 1, torch.full_like(first, full_len))
        if noise is None:
            noise = initial_noise(rows, model.action_space.dims, generator, device, torch.float32)
        plan.flow.prepare(offsets, full_len - 1, row_deltas, noise.to(device, torch.float32))
        action = plan.flow_run().clone()
        kept = Intermediates(position_ids, rope_deltas, vision, prefill_logits) if keep_intermediates else None
        return finish_rollout(model, inputs, tokens, clock, action=action, reasoning=reasoning, sequences=sequences,
                              fused=fused, num_samples=n, kept=kept)  # fmt: skip


__all__ = ["FastInfo", "FastOptions", "FastRollout"]
