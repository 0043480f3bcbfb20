"""Did the checkpoint's weights reach the policy? A load that fell back to random initialisation is refused.

LeRobot loads a policy's ``model.safetensors`` non-strictly: keys that match nothing (a file saved from a
``torch.compile``'d or DDP-wrapped model carries ``_orig_mod.`` / ``module.`` before every name) are logged as
a warning and the policy runs its random initial weights. Pi0's loader goes further: a missing or unreadable
weights file prints "Returning model without loading pretrained weights" and returns the random model (the
researcher's Windows console, unable to print a ✓, took that path). Either way the evaluation scores a
random network and reads like "the policy has not learned". This module compares the loaded policy's
parameters with the file and names what went wrong in one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import safe_open

from backends.torch_lerobot.checkpoints import CheckpointError

WEIGHTS_FILE = "model.safetensors"
#: Prefixes a wrapped model's saved names carry (torch.compile, DistributedDataParallel / DataParallel).
WRAPPER_PREFIXES = ("_orig_mod.", "module.")
#: Tensors compared value by value (spread over the file): enough to catch a load that did not happen, cheap
#: for a 3B model.
COMPARED_TENSORS = 16
#: A loaded tensor may differ from the file by the dtype it is kept in (float32 file, bfloat16 model).
RELATIVE_TOLERANCE = 1e-2
ABSOLUTE_TOLERANCE = 1e-3


def check_weights_loaded(policy: torch.nn.Module, pretrained_dir: Path) -> None:
    """Raise ``CheckpointError`` unless every parameter of ``policy`` came from ``pretrained_dir``'s weights
    file (tied parameters saved once count as present) and the sampled tensors equal the file's."""
    path = pretrained_dir / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{pretrained_dir} has no {WEIGHTS_FILE}: LeRobot would run the policy with random initial "
            "weights (Pi0 loads without it and only prints a line); copy the file from the training run's "
            "pretrained_model/"
        )
    model_state = policy.state_dict()
    with safe_open(str(path), framework="pt", device="cpu") as weights:
        file_keys = set(weights.keys())
        missing = _missing_keys(model_state, file_keys)
        if missing:
            raise CheckpointError(_missing_message(path, missing, len(model_state), file_keys))
        shared = sorted(file_keys & set(model_state))
        step = max(1, len(shared) // COMPARED_TENSORS)
        for key in shared[::step]:
            loaded = model_state[key].detach().to("cpu", torch.float32)
            saved = weights.get_tensor(key).to(torch.float32)
            if loaded.shape != saved.shape or not torch.allclose(
                loaded, saved, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE
            ):
                raise CheckpointError(
                    f"the policy's {key!r} differs from {path}'s after loading: the weights were not "
                    "loaded (the loader fell back to random initialisation; its log says why); fix the "
                    "load or copy the checkpoint again"
                )


def _missing_keys(model_state: Mapping[str, torch.Tensor], file_keys: set[str]) -> list[str]:
    """The policy's tensors the file does not hold; a tied tensor (one storage under several names, saved
    once) is present when any of its names is."""
    names_by_storage: dict[tuple[int, int], list[str]] = {}
    for name, tensor in model_state.items():
        key = (
            (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
            if tensor.numel()
            else (id(tensor), 0)
        )
        names_by_storage.setdefault(key, []).append(name)
    missing = []
    for names in names_by_storage.values():
        if not any(name in file_keys for name in names):
            missing += names
    return sorted(missing)


def _missing_message(path: Path, missing: list[str], total: int, file_keys: Iterable[str]) -> str:
    prefix = _wrapper_prefix(missing, file_keys)
    if prefix is not None:
        fix = (
            f"its names carry the prefix {prefix!r} (saved from a torch.compile'd or DDP-wrapped model): "
            f"save the unwrapped model, or strip {prefix!r} from the names"
        )
    else:
        fix = "the file belongs to another policy type or size, or was saved by another LeRobot version"
    return (
        f"{path} holds no weights for {len(missing)} of the policy's {total} tensors (e.g. {missing[0]!r}): "
        f"LeRobot would run them with random initial weights; {fix}"
    )


def _wrapper_prefix(missing: list[str], file_keys: Iterable[str]) -> str | None:
    """The wrapper prefix that, stripped from the file's names, gives (most of) the missing ones."""
    file_keys = set(file_keys)
    for prefix in WRAPPER_PREFIXES:
        stripped = {key.removeprefix(prefix) for key in file_keys if key.startswith(prefix)}
        # Pi0's loader also adds "model." before names that lack it.
        stripped |= {f"model.{key}" for key in stripped}
        # Most, not all: a tied tensor's second name was never saved under any prefix.
        if stripped and sum(name in stripped for name in missing) >= 0.5 * len(missing):
            return prefix
    return None
