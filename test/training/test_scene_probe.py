"""The training-only scene probe: its classes come from real reference labels, its targets are multi-hot, it can
learn a class from image tokens alone, and inside the joint loss its gradient reaches the vision tower and nothing
after it (so it changes what the images encode, never how the decoder reads them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_training import TINY, episode  # noqa: F401  (its module fixture: rendered samples)

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.sim.generate import generate
from alpamayo_ros.training.checkpoint import ActionStats, build_config
from alpamayo_ros.training.collate import Collator
from alpamayo_ros.training.data import SampleSet
from alpamayo_ros.training.objective import joint_loss
from alpamayo_ros.training.scene_probe import SceneProbe, SceneVocab, evidence_templates
from alpamayo_ros.training.vocab import build_tokenizer

torch.set_num_threads(min(2, torch.get_num_threads()))

RED = "The traffic light ahead is red and the stop line is 31 m away."
CURVE = "The road curves to the left ahead."
LABEL = f"{RED} {CURVE} I must stop at the stop line. Follow the road through the left curve and come to a stop."


def test_evidence_templates_mask_numbers_and_drop_decision_and_action() -> None:
    assert evidence_templates(LABEL) == [
        "The traffic light ahead is red and the stop line is # m away.",
        CURVE,
    ]
    with pytest.raises(ValueError, match="not a reference label"):
        evidence_templates("I must stop at the stop line. Keep the lane and come to a stop.")


def test_vocab_comes_from_generated_labels_and_targets_are_multi_hot() -> None:
    texts = [t.label.text for t in generate("red_light_stop_line", seed=3, seconds=8.0).ticks(render=False)]
    vocab = SceneVocab(texts)
    assert any("traffic light ahead is" in c for c in vocab.classes)
    assert not any(ch.isdigit() for c in vocab.classes for ch in c)  # every distance is masked
    targets = vocab.targets([LABEL, texts[0]])
    assert targets.shape == (2, len(vocab))
    assert set(targets.flatten().tolist()) <= {0.0, 1.0}
    assert targets[1].sum() == len(set(evidence_templates(texts[0])))  # every template of a seen label is named
    assert targets[0].sum() == sum(t in vocab.classes for t in evidence_templates(LABEL))  # unseen ones are left out


def test_probe_learns_which_token_carries_the_evidence() -> None:
    torch.manual_seed(0)
    batch, tokens, hidden = 32, 8, 16
    embeds = torch.randn(batch, tokens, hidden) * 0.1
    targets = (torch.rand(batch, 3) < 0.5).float()
    for c in range(3):  # class c shows up as a direction in token c of the sample
        embeds[:, c, c] += 2.0 * targets[:, c]
    probe = SceneProbe(hidden, 3)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05)
    flat = embeds.reshape(batch * tokens, hidden)
    for _ in range(150):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe(flat, batch), targets)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    assert ((probe(flat, batch) > 0).float() == targets).float().mean() > 0.95
    with pytest.raises(ValueError, match="do not split into 5 samples"):
        probe(flat, 5)


def _tiny_model(data: SampleSet) -> tuple[AlpamayoR1, Collator]:
    """The real model at toy width (train mode, seed 0) and its collator, for the samples' labels."""
    tok = build_tokenizer(sorted(set(data.texts)), TINY.future_bins + TINY.history_bins)
    cfg, _, _ = build_config(TINY, tok, ActionStats(0.0, 1.0, 0.0, 0.01))
    torch.manual_seed(0)
    return AlpamayoR1(cfg).train(), Collator.for_config(tok, cfg)


def test_scene_loss_trains_the_vision_tower_only(episode: SampleSet) -> None:  # noqa: F811
    model, collate = _tiny_model(episode)
    idx = np.arange(len(episode))
    vocab = SceneVocab(episode.texts)
    probe = SceneProbe(TINY.text_hidden, len(vocab))
    gen = torch.Generator().manual_seed(0)
    parts = joint_loss(
        model, collate(episode, idx), collate.future_start_id, generator=gen,
        scene=(probe, vocab.targets(episode.texts)), scene_weight=2.0,
    )  # fmt: skip
    assert parts.scene is not None and float(parts.scene.detach()) > 0
    torch.testing.assert_close(parts.total, parts.lm + parts.flow + 2.0 * parts.scene)
    parts.scene.backward()  # type: ignore[no-untyped-call]
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if ".visual." in n)
    assert all(g is None for n, g in grads.items() if ".visual." not in n)
    assert all(p.grad is not None for p in probe.parameters())


def test_probe_pools_each_sample_over_its_own_image_tokens(episode: SampleSet) -> None:  # noqa: F811
    """The probe's reshape assumes each sample's image tokens are contiguous in the vision output: a sample's logits
    must not change when another sample shares its batch."""
    model, collate = _tiny_model(episode)
    model.eval()
    probe = SceneProbe(TINY.text_hidden, 5)

    def logits(idx: list[int]) -> torch.Tensor:
        batch = collate(episode, np.array(idx))
        return probe(model.encode_images(batch.pixel_values, batch.image_grid_thw).image_embeds, len(idx))

    with torch.no_grad():
        both = logits([0, 1])
        torch.testing.assert_close(both[0], logits([0])[0])
        torch.testing.assert_close(both[1], logits([1])[0])
        assert not torch.allclose(both[0], both[1])  # the two samples' frames differ, so must their logits
