"""Pretrained backbones from local files only: what a policy config needs so that nothing is downloaded.

- act / diffusion: a torchvision ResNet weight file (the ``.pth`` torchvision itself caches). Without one
  the ResNet starts from random weights. With one, torchvision is pointed at a private cache holding it.
- smolvla: a local SmolVLM model directory (config, weights, processor) as ``vlm_model_name``.
- pi0: a local LeRobot pi0 checkpoint (e.g. a copy of ``lerobot/pi0_base``) to fine-tune from.
- smolvla / pi0 without real weights: a tiny random backbone built by ``tiny_backbones.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from backends.torch_lerobot.backbone_errors import BackboneError

__all__ = ["BackboneError", "configure_backbone"]


def _resnet_weights(backbone_path: Path, vision_backbone: str = "resnet18") -> dict[str, Any]:
    import torchvision

    weights_enum = torchvision.models.get_model_weights(vision_backbone).IMAGENET1K_V1
    expected_name = weights_enum.url.rsplit("/", 1)[-1]
    if backbone_path.is_dir():
        candidates = [backbone_path / expected_name, *sorted(backbone_path.glob(f"{vision_backbone}*.pth"))]
        weight_file = next((path for path in candidates if path.is_file()), None)
    else:
        weight_file = backbone_path if backbone_path.is_file() else None
    if weight_file is None:
        raise BackboneError(
            f"no {vision_backbone} weight file at {backbone_path}: pass torchvision's {expected_name} "
            "(or its folder) to --backbone-dir, or leave it out to start from random weights"
        )
    # torchvision loads IMAGENET1K_V1 from $TORCH_HOME/hub/checkpoints/<name>; a private cache holding a
    # link to the user's file makes that load local.
    torch_home = Path(tempfile.mkdtemp(prefix="so101lab-torch-home-"))
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    (torch_home / "hub" / "checkpoints" / expected_name).symlink_to(weight_file.resolve())
    os.environ["TORCH_HOME"] = str(torch_home)
    # ImageNet weights are for torchvision's own ResNet (the presets' GroupNorm ResNets start from scratch).
    return {
        "pretrained_backbone_weights": f"{type(weights_enum).__name__}.IMAGENET1K_V1",
        "vision_backbone": vision_backbone,
    }


def configure_backbone(
    policy: str,
    *,
    backbone_dir: str | Path | None = None,
    tiny_backbone_dir: str | Path | None = None,
    tiny_scale: int = 1,
) -> tuple[dict[str, Any], Path | None]:
    """Policy-config overrides that load the backbone from local files (never from a hub), and the
    backbone dir in use (None for ResNets)."""
    if backbone_dir is not None and tiny_backbone_dir is not None:
        raise BackboneError(
            "pass either --backbone-dir (real weights) or --tiny-backbone (tiny random), not both"
        )
    backbone_path = Path(backbone_dir).expanduser().resolve() if backbone_dir is not None else None
    if policy in ("act", "diffusion"):
        if tiny_backbone_dir is not None:
            raise BackboneError(
                f"--tiny-backbone is for smolvla/pi0; {policy} starts from random ResNet weights"
            )
        return ({} if backbone_path is None else _resnet_weights(backbone_path)), None

    from backends.torch_lerobot import tiny_backbones

    if backbone_path is None and tiny_backbone_dir is None:
        raise BackboneError(
            f"{policy} needs a backbone and the hub is off: pass --backbone-dir <local weights> or "
            "--tiny-backbone <dir> to build a tiny random one (for tests)"
        )
    if tiny_backbone_dir is not None:
        backbone_path = tiny_backbones.build_tiny_backbone(
            policy, Path(tiny_backbone_dir).expanduser().resolve(), scale=tiny_scale
        )
    assert backbone_path is not None
    if not backbone_path.is_dir():
        raise BackboneError(f"--backbone-dir {backbone_path} is not a directory")
    return tiny_backbones.policy_overrides_for_backbone(policy, backbone_path), backbone_path
