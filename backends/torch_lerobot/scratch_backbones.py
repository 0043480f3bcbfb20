"""ResNet-18-shaped image backbones that train from random weights, under names LeRobot's ACT and Diffusion
accept for ``vision_backbone``.

LeRobot builds its image encoder as ``getattr(torchvision.models, config.vision_backbone)(...)``; ACT passes
``norm_layer=FrozenBatchNorm2d``, whose fixed statistics mean something only with ImageNet weights. This lab
cannot download those, so its ACT starts from random weights, where a frozen batch norm is the identity:
eighteen layers trained with no normalisation at all. These backbones keep ResNet-18's layout (a 7 × 7
stem, four stages of two basic blocks, ``layer4`` as the feature map, ``fc`` naming its width) with
GroupNorm, trained like every other weight, and a base width of 16, 32 or 64 channels (64 is ResNet-18's):
a narrower one costs a fraction of the compute, which is what a CPU run pays for. The residual branches
start at zero (their last norm's scale is 0), so each block starts as the identity.

Importing this module registers ``resnet18_gn_w16``, ``resnet18_gn_w32`` and ``resnet18_gn_w64`` in
``torchvision.models``; the training entry point, the adapter that loads checkpoints and the lerobot-eval
plugin import it, so a checkpoint that names one loads wherever this backend is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

WIDTHS: tuple[int, ...] = (16, 32, 64)
#: Channels per GroupNorm group (Diffusion Policy's choice when it swaps batch norm out).
_CHANNELS_PER_GROUP = 16


def backbone_name(width: int) -> str:
    return f"resnet18_gn_w{width}"


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // _CHANNELS_PER_GROUP), channels)


class GroupNormResNet18(nn.Module):
    """ResNet-18's stages at ``width`` base channels with GroupNorm; children in forward order, as
    torchvision's ``IntermediateLayerGetter`` (ACT) and ``children()[:-2]`` (Diffusion) expect."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = _group_norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = width
        for stage, multiple in enumerate((1, 2, 4, 8), start=1):
            planes, stride = width * multiple, 1 if stage == 1 else 2
            downsample = None
            if stride != 1 or channels != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(channels, planes, kernel_size=1, stride=stride, bias=False), _group_norm(planes)
                )
            blocks = [
                BasicBlock(channels, planes, stride, downsample, norm_layer=_group_norm),
                BasicBlock(planes, planes, norm_layer=_group_norm),
            ]
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            channels = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 1000)  # unused by the policies: its in_features names the width
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, images: Any) -> Any:
        features = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        features = self.layer4(self.layer3(self.layer2(self.layer1(features))))
        return self.fc(self.avgpool(features).flatten(1))


def _builder(width: int) -> Callable[..., GroupNormResNet18]:
    def build(
        *, weights: Any = None, replace_stride_with_dilation: Any = None, norm_layer: Any = None
    ) -> GroupNormResNet18:
        # norm_layer (ACT's FrozenBatchNorm2d) is ignored on purpose: GroupNorm is the point.
        if weights is not None:
            raise ValueError(
                f"{backbone_name(width)} has no pretrained weights: set pretrained_backbone_weights to None"
            )
        if replace_stride_with_dilation and any(replace_stride_with_dilation):
            raise ValueError(
                f"{backbone_name(width)} keeps its strides: set replace_final_stride_with_dilation false"
            )
        return GroupNormResNet18(width)

    build.__name__ = backbone_name(width)
    return build


for _width in WIDTHS:
    setattr(torchvision.models, backbone_name(_width), _builder(_width))
