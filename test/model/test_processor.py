"""Image preprocessing, prompt text and prompt ids vs the official processor outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alpamayo_ros.model.processor import (
    ImageProcessorConfig,
    expand_image_pads,
    preprocess_images,
    prompt_ids,
    prompt_text,
    smart_resize,
)


def test_pixel_values_and_grid_match(goldens_a) -> None:  # type: ignore[no-untyped-def]
    images = goldens_a.inputs["images_uint8"][0].reshape(16, 3, 320, 576)
    out = preprocess_images(images, ImageProcessorConfig())
    # atol 1e-6: (u/255 - 0.5)/0.5 vs the processor's fused form differ by at most one float32 ulp
    np.testing.assert_allclose(out.pixel_values.numpy(), goldens_a.processor["pixel_values"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out.image_grid_thw.numpy(), goldens_a.processor["image_grid_thw"])


def test_prompt_text_is_the_official_chat_template_output(goldens_a) -> None:  # type: ignore[no-untyped-def]
    assert prompt_text(16) == goldens_a.prompt_text


def test_prompt_ids_and_mask(goldens_a, tokenizer) -> None:  # type: ignore[no-untyped-def]
    grids = torch.from_numpy(goldens_a.processor["image_grid_thw"])
    ids = prompt_ids(tokenizer, grids, 2)
    np.testing.assert_array_equal(ids.numpy(), goldens_a.processor["input_ids"])
    assert goldens_a.processor["attention_mask"].all()  # no padding: our batches never pad
    assert ids.shape[1] == 3006


def test_camera_size_resizes_to_320x576() -> None:
    assert smart_resize(1080, 1920, 32, 163840, 196608) == (320, 576)
    assert smart_resize(320, 576, 32, 163840, 196608) == (320, 576)
    images = torch.randint(0, 256, (2, 3, 1080, 1920), dtype=torch.uint8)
    out = preprocess_images(images, ImageProcessorConfig())
    assert out.pixel_values.shape == (2 * 720, 1536)
    assert out.image_grid_thw.tolist() == [[1, 20, 36]] * 2
    assert float(out.pixel_values.abs().max()) <= 1.0
    levels = (out.pixel_values * 0.5 + 0.5) * 255  # resized in uint8 (torchvision's CPU bicubic path): whole levels
    assert float((levels - levels.round()).abs().max()) < 1e-3


def test_resize_keeps_a_flat_image_flat() -> None:
    images = torch.full((1, 3, 720, 1280), 200, dtype=torch.uint8)
    out = preprocess_images(images, ImageProcessorConfig())
    np.testing.assert_allclose(out.pixel_values.numpy(), (200 / 255 - 0.5) / 0.5, atol=1e-6)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess_images(torch.zeros(1, 3, 320, 576), ImageProcessorConfig())
    with pytest.raises(ValueError, match="placeholders"):
        expand_image_pads(prompt_text(2), torch.tensor([[1, 20, 36]]), 2)
