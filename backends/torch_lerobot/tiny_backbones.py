"""Tiny random SmolVLA / Pi0 backbones built offline, and the config overrides that use a backbone dir.

The real backbones (SmolVLM2-500M, PaliGemma-3B) come from a hub this lab cannot reach. For tests and CPU
smoke runs a backbone dir is built locally: a byte-level BPE tokenizer trained with ``tokenizers`` on task
prompts, and model configs instantiated with random weights.

- smolvla: a complete SmolVLM model dir (``config.json``, ``model.safetensors``, tokenizer and processor
  files) that ``transformers`` loads like the real one; it becomes the policy's ``vlm_model_name``.
- pi0: the tokenizer plus the model sizes in ``tiny_backbone.json``; Pi0 hard-codes PaliGemma's sizes, which
  ``pi0_sizes.py`` overrides while a model is built.

A backbone dir carries ``tiny_backbone.json`` (``{"policy": ..., ...sizes}``); every checkpoint trained on
a tiny pi0 backbone keeps a copy beside its weights so that loading rebuilds the same tiny shapes.
The backbone dir must stay where it was built: checkpoints refer to it by absolute path (as LeRobot
refers to ``vlm_model_name``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from backends.torch_lerobot.backbone_errors import BackboneError
from libs.errors import one_line_errors

TINY_BACKBONE_FILE = "tiny_backbone.json"
_TASK_PROMPTS = (
    "put the block in the bowl",
    "pick up the red block and place it into the bowl",
    "pick the cube and drop it in the bowl",
    "move the block to the bowl",
)
_SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "unk_token": "<unk>",
}
# The attribute names SmolVLMProcessor reads from its tokenizer (and SmolVLA reads their ids).
_IMAGE_TOKENS = {
    "image_token": "<image>",
    "fake_image_token": "<fake_token_around_image>",
    "global_image_token": "<global-img>",
    "end_of_utterance_token": "<end_of_utterance>",
    "video_token": "<video>",
}
TINY_IMAGE_SIZE = 64
_SMOLVLM_SIZES = {
    "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4},
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    "patch_size": 16,
    "scale_factor": 2,
}
#: Pi0 joins the VLM's and the action expert's attention layer by layer: equal depth, heads and head_dim;
#: its attention reshape hard-codes 8 query heads and 1 key/value head, so only widths and head_dim shrink.
_PI0_SIZES = {
    "paligemma": {"width": 64, "depth": 2, "mlp_dim": 128, "num_heads": 8, "num_kv_heads": 1, "head_dim": 8},
    "action_expert": {
        "width": 32,
        "depth": 2,
        "mlp_dim": 64,
        "num_heads": 8,
        "num_kv_heads": 1,
        "head_dim": 8,
    },
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    "patch_size": 14,
    "image_size": 56,
}


def smolvlm_sizes(scale: int = 1) -> dict[str, Any]:
    """The tiny SmolVLM's sizes with every width ``scale`` times the smallest (depth and heads kept)."""
    text, vision = _SMOLVLM_SIZES["text"], _SMOLVLM_SIZES["vision"]
    return {
        **_SMOLVLM_SIZES,
        "text": {
            **text,
            "hidden_size": text["hidden_size"] * scale,
            "intermediate_size": text["intermediate_size"] * scale,
        },
        "vision": {
            **vision,
            "hidden_size": vision["hidden_size"] * scale,
            "intermediate_size": vision["intermediate_size"] * scale,
        },
    }


def pi0_sizes(scale: int = 1) -> dict[str, Any]:
    """The tiny Pi0's sizes with every width (and the shared head_dim) ``scale`` times the smallest."""

    def wider(part: dict[str, Any], *names: str) -> dict[str, Any]:
        return {**part, **{name: part[name] * scale for name in names}}

    return {
        **_PI0_SIZES,
        "paligemma": wider(_PI0_SIZES["paligemma"], "width", "mlp_dim", "head_dim"),
        "action_expert": wider(_PI0_SIZES["action_expert"], "width", "mlp_dim", "head_dim"),
        "vision": wider(_PI0_SIZES["vision"], "hidden_size", "intermediate_size"),
    }


def read_tiny_sizes(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / TINY_BACKBONE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _train_tokenizer(extra_specials: dict[str, str]):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [*_SPECIAL_TOKENS.values(), *extra_specials.values()]
    tokenizer = Tokenizer(models.BPE(unk_token=_SPECIAL_TOKENS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(_TASK_PROMPTS) * 8, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, **_SPECIAL_TOKENS, extra_special_tokens=dict(extra_specials)
    )


def _build_smolvlm(directory: Path, seed: int, sizes: dict[str, Any]) -> None:
    from transformers import LlamaConfig, SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMProcessor
    from transformers.models.smolvlm import SmolVLMImageProcessor, SmolVLMVideoProcessor
    from transformers.models.smolvlm.configuration_smolvlm import SmolVLMVisionConfig

    tokenizer = _train_tokenizer(_IMAGE_TOKENS)
    patches_per_side = TINY_IMAGE_SIZE // sizes["patch_size"]
    image_seq_len = (patches_per_side // sizes["scale_factor"]) ** 2
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        num_key_value_heads=2,
        head_dim=sizes["text"]["hidden_size"] // sizes["text"]["num_attention_heads"],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sizes["text"],
    )
    vision_config = SmolVLMVisionConfig(
        image_size=TINY_IMAGE_SIZE, patch_size=sizes["patch_size"], **sizes["vision"]
    )
    config = SmolVLMConfig(
        text_config=text_config,
        vision_config=vision_config,
        scale_factor=sizes["scale_factor"],
        image_token_id=tokenizer.convert_tokens_to_ids(_IMAGE_TOKENS["image_token"]),
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    SmolVLMForConditionalGeneration(config).save_pretrained(directory)
    image_size = {"longest_edge": TINY_IMAGE_SIZE}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size=image_size, max_image_size=image_size),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(),
        image_seq_len=image_seq_len,
    )
    processor.save_pretrained(directory)


def build_tiny_backbone(policy: str, directory: Path, seed: int = 0, scale: int = 1) -> Path:
    """Build (or reuse, when already built for ``policy`` at ``scale``) a tiny random backbone in
    ``directory``; ``scale`` multiplies every width (step time grows far slower than the weights do: at
    these sizes a step is mostly the cost of launching its many small operations)."""
    directory = Path(directory)
    existing = read_tiny_sizes(directory)
    if existing is not None and existing.get("policy") == policy:
        if int(existing.get("scale", 1)) != scale:
            raise BackboneError(
                f"--tiny-backbone {directory} holds a {policy} backbone of scale {existing.get('scale', 1)}, "
                f"not {scale}: choose another directory"
            )
        return directory
    if directory.exists() and any(directory.iterdir()):
        raise BackboneError(f"--tiny-backbone {directory} is not empty and holds no tiny {policy} backbone")
    directory.mkdir(parents=True, exist_ok=True)
    if policy == "smolvla":
        _build_smolvlm(directory, seed, smolvlm_sizes(scale))
        sizes: dict[str, Any] = {"policy": policy, "image_size": TINY_IMAGE_SIZE, **smolvlm_sizes(scale)}
    elif policy == "pi0":
        tokenizer = _train_tokenizer({})
        tokenizer.save_pretrained(directory)
        sizes = {"policy": policy, "vocab_size": len(tokenizer), **pi0_sizes(scale)}
    else:
        raise ValueError(f"tiny backbones exist for smolvla and pi0, not {policy}")
    sizes["scale"] = scale
    (directory / TINY_BACKBONE_FILE).write_text(json.dumps(sizes, indent=2))
    return directory


def policy_overrides_for_backbone(policy: str, directory: Path) -> dict[str, Any]:
    """Policy-config fields that make ``policy`` use the backbone in ``directory``."""
    tiny = read_tiny_sizes(directory)
    if policy == "smolvla":
        if not (directory / "config.json").is_file():
            raise BackboneError(
                f"--backbone-dir {directory} has no config.json: pass a local SmolVLM model dir"
            )
        overrides: dict[str, Any] = {"vlm_model_name": str(directory), "load_vlm_weights": tiny is None}
        if tiny is not None:
            size = int(tiny["image_size"])
            overrides |= {"resize_imgs_with_padding": (size, size), "num_vlm_layers": -1}
        return overrides
    if policy == "pi0":
        if tiny is not None:
            size = int(tiny["image_size"])
            return {"image_resolution": (size, size), "dtype": "float32"}
        if not (directory / "config.json").is_file() or not (directory / "model.safetensors").is_file():
            raise BackboneError(
                f"--backbone-dir {directory} is not a LeRobot pi0 checkpoint "
                "(config.json + model.safetensors)"
            )
        return {"pretrained_path": directory}
    raise BackboneError(f"{policy} takes no backbone dir")


@contextlib.contextmanager
def building_context(policy: str, backbone_dir: Path | None) -> Iterator[None]:
    """While training ``policy`` on ``backbone_dir``: Pi0's hard-coded sizes and tokenizer replaced."""
    tiny = read_tiny_sizes(backbone_dir) if backbone_dir is not None else None
    if policy != "pi0" or tiny is None:
        yield
        return
    from backends.torch_lerobot import pi0_sizes

    with pi0_sizes.tiny_pi0(tiny, tokenizer_dir=backbone_dir):
        yield


@contextlib.contextmanager
def loading_context(config: Any, pretrained_dir: Path) -> Iterator[None]:
    """While loading a checkpoint: the tiny sizes it was trained with, if any."""
    tiny = read_tiny_sizes(pretrained_dir)
    if getattr(config, "type", None) != "pi0" or tiny is None:
        yield
        return
    from backends.torch_lerobot import pi0_sizes

    with pi0_sizes.tiny_pi0(tiny, tokenizer_dir=None):
        yield


@one_line_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Builds a tiny backbone on its own, so that training runs that share it find it made."""
    parser = argparse.ArgumentParser(prog="tiny-backbone", description=main.__doc__)
    parser.add_argument("--policy", required=True, choices=("smolvla", "pi0"))
    parser.add_argument("--out", type=Path, required=True, help="the backbone dir (train's --tiny-backbone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=1, help="every width N times the smallest")
    args = parser.parse_args(argv)
    if args.scale < 1:
        raise BackboneError(f"--scale {args.scale} must be 1 or more")
    directory = build_tiny_backbone(args.policy, args.out.expanduser().resolve(), args.seed, args.scale)
    print(f"tiny {args.policy} backbone in {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
