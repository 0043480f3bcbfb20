"""The one workaround for sizes LeRobot's Pi0 hard-codes (LeRobot 0.6.1, ``policies/pi0``).

Pi0 builds its model from two named variants only (``gemma_2b`` for the VLM, ``gemma_300m`` for the action
expert, validated in ``PI0Config``) and writes PaliGemma's real sizes into the Hugging Face configs itself:
a 257,152-token vocabulary, SigLIP-So400m's vision tower (1152 wide, 27 layers) and a 2048-wide projector.
Its processor loads the tokenizer by hub name (``google/paligemma-3b-pt-224``). Built as is, the smallest
Pi0 has ~3B parameters and needs the hub.

While ``tiny_pi0(sizes)`` is active, and only then, the names Pi0's module looks up are swapped:
- ``get_gemma_config``: the two variant names map to the tiny widths/depths in ``sizes``;
- the two model classes receive configs shrunk to the tiny vocabulary and vision tower (projector width
  set to the tiny VLM width, which PaliGemma requires);
- the tokenizer step of a newly built processor loads the tokenizer from the local backbone dir (the saved
  processor then names that dir, so loading the checkpoint later needs no patch for it).
Everything else (training loop, loss, sampling, checkpoint format) is LeRobot's own code, unmodified.
Delete this module when LeRobot accepts custom Gemma sizes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lerobot.policies.pi0 import modeling_pi0, processor_pi0


@contextlib.contextmanager
def tiny_pi0(sizes: dict[str, Any], tokenizer_dir: Path | None) -> Iterator[None]:
    vocab_size = int(sizes["vocab_size"])
    vision = sizes["vision"]
    variants = {
        "gemma_2b": modeling_pi0.GemmaConfig(**sizes["paligemma"]),
        "gemma_300m": modeling_pi0.GemmaConfig(**sizes["action_expert"]),
    }
    original_get_config = modeling_pi0.get_gemma_config
    original_vlm_class = modeling_pi0.PaliGemmaForConditionalGenerationWithPiGemma
    original_expert_class = modeling_pi0.PiGemmaForCausalLM
    original_tokenizer_step = processor_pi0.TokenizerProcessorStep

    def get_gemma_config(variant: str) -> Any:
        return variants[variant] if variant in variants else original_get_config(variant)

    def tiny_vlm(config: Any) -> Any:
        config._vocab_size = vocab_size  # Pi0 itself sets this private field
        config.text_config.vocab_size = vocab_size
        config.image_token_index = vocab_size
        for name, value in vision.items():
            setattr(config.vision_config, name, value)
        config.vision_config.patch_size = int(sizes["patch_size"])
        config.vision_config.projection_dim = config.text_config.hidden_size
        return original_vlm_class(config=config)

    def tiny_expert(config: Any) -> Any:
        config.vocab_size = vocab_size
        return original_expert_class(config=config)

    modeling_pi0.get_gemma_config = get_gemma_config
    modeling_pi0.PaliGemmaForConditionalGenerationWithPiGemma = tiny_vlm
    modeling_pi0.PiGemmaForCausalLM = tiny_expert
    if tokenizer_dir is not None:
        processor_pi0.TokenizerProcessorStep = functools.partial(  # type: ignore[misc]
            _local_tokenizer_step, original_tokenizer_step, str(tokenizer_dir)
        )
    try:
        yield
    finally:
        modeling_pi0.get_gemma_config = original_get_config
        modeling_pi0.PaliGemmaForConditionalGenerationWithPiGemma = original_vlm_class
        modeling_pi0.PiGemmaForCausalLM = original_expert_class
        processor_pi0.TokenizerProcessorStep = original_tokenizer_step


def _local_tokenizer_step(step_class: type, tokenizer_dir: str, **kwargs: Any) -> Any:
    return step_class(**{**kwargs, "tokenizer_name": tokenizer_dir})
