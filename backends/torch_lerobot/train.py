"""Train a LeRobot policy on a local LeRobot v3 dataset with LeRobot's own training loop, fully offline.

    ./pants run backends/torch_lerobot:train -- --policy act --dataset DATA --steps 2000 --out runs/act

The loop is ``lerobot.scripts.lerobot_train.train`` driven by a ``TrainPipelineConfig`` built here; this
module only chooses sizes (``presets.py``), keeps the hub out (``__init__.py``, ``backbones.py``), checks the
disk before step 0 (``libs.datasets.preflight``) and, as each checkpoint is written, writes its card (the
dataset's scene, stats and block positions: ``libs.policy_api.card``) beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from lerobot.configs.default import DatasetConfig, WandBConfig
from lerobot.configs.train import TrainPipelineConfig
from lerobot.optim.schedulers import CosineDecayWithWarmupSchedulerConfig
from lerobot.scripts import lerobot_train
from tqdm import tqdm

from backends.torch_lerobot import scratch_backbones
from backends.torch_lerobot.backbones import configure_backbone
from backends.torch_lerobot.checkpoints import PRETRAINED_DIR_NAME, list_checkpoints, write_card
from backends.torch_lerobot.depth_channels import add_depth_step
from backends.torch_lerobot.environment_state import STATE_ONLY_POLICIES, add_environment_state_step
from backends.torch_lerobot.frame_cache import InMemoryFrames, cache_refusal, frame_bytes, is_vector_only
from backends.torch_lerobot.object_state_estimator import (
    EstimateObjectStateStep,
    ObjectStateNet,
    insert_before_normalizer,
)
from backends.torch_lerobot.presets import POLICY_TYPES, PRESETS, make_policy_config
from backends.torch_lerobot.resume import (
    LossLog,
    ResumePoint,
    atomic_checkpoint_dir,
    clear_fresh_run,
    find_resume_point,
    set_aside_damaged,
    truncate_loss_log,
)
from backends.torch_lerobot.tiny_backbones import TINY_BACKBONE_FILE, building_context
from backends.torch_lerobot.train_estimator import EstimatorError, load_estimator
from libs.compute_threads import THREADS_HELP, decide_and_apply
from libs.config_flags import add_flags, config_from_flags, flag, flag_fields
from libs.datasets import preflight
from libs.errors import USAGE_EXIT_STATUS, LabError, one_line_errors
from libs.policy_api.types import ENVIRONMENT_STATE_KEY

logger = logging.getLogger(__name__)
#: ``RUN/preflight.txt``: the data-loader probe's table and recommendation (with --probe-loader).
PREFLIGHT_FILE = "preflight.txt"


class TrainError(LabError, RuntimeError):
    """Training cannot start; the message names the problem and the fix."""


def _check_dataset(dataset: Path, policy: str) -> dict[str, Any]:
    """The dataset's features (``meta/info.json``), once it is known to be one ``policy`` can train on."""
    info = dataset / "meta" / "info.json"
    if not info.is_file():
        raise TrainError(
            f"{dataset} is not a LeRobot v3 dataset (no meta/info.json): pass --dataset <dataset root>"
        )
    if not (dataset / "meta" / "stats.json").is_file():
        raise TrainError(f"{dataset} has no meta/stats.json: recompute the stats before training")
    features = json.loads(info.read_text()).get("features", {})
    has_camera = any(spec.get("dtype") in ("video", "image") for spec in features.values())
    if policy in STATE_ONLY_POLICIES and not has_camera:
        raise TrainError(
            f"{policy} needs at least one camera and {dataset} has none: record the dataset with cameras "
            "(drop --no-cameras; --image-size 48x64 keeps them cheap)"
        )
    return features


@contextlib.contextmanager
def _lerobot_cli_free(lerobot_argv: Sequence[str] = ()) -> Iterator[None]:
    """LeRobot's config validation re-reads ``sys.argv`` for ``--policy.path`` (and, resuming, for
    ``--config_path``); ours are not its flags, so it sees ``lerobot_argv`` only."""
    saved = sys.argv
    sys.argv = [saved[0], *lerobot_argv]
    try:
        yield
    finally:
        sys.argv = saved


@dataclass(frozen=True)
class ObjectStateInputs:
    """Where the policy's object state comes from: the dataset (None) or an estimator over the cameras,
    and whether the policy's own network also reads the camera images."""

    estimator: ObjectStateNet | None = None
    policy_cameras: bool = True


@contextlib.contextmanager
def _lerobot_hooks(
    dataset: Path,
    backbone_dir: Path | None,
    out: Path,
    steps: int,
    save_freq: int,
    probe_workers: Sequence[int] = (),
    frames_in_memory: bool = True,
    object_state: ObjectStateInputs | None = None,
    seed: int = 0,
) -> Iterator[None]:
    """Hooks into LeRobot's loop, each a thin wrapper around its own function:

    - after ``make_policy`` (before step 0): the disk preflight, sized from the real parameter count;
    - after ``make_pre_post_processors``: depth maps (one-channel images) are repeated to the three
      channels the image encoders take (``depth_channels``), and SmolVLA's and Pi0's state gains the object
      state they would otherwise never read (``environment_state``): steps saved with the preprocessor;
    - after ``make_pre_post_processors`` (still before step 0), when ``probe_workers`` is given: the
      preflight's data-loader probe — LeRobot's own dataset in a DataLoader for each ``num_workers``,
      against one forward + backward pass of the policy — with its recommendation;
    - with an object-state estimator: the estimator step goes before the normaliser (its estimate replaces
      the dataset's object state in every batch), and without ``policy_cameras`` the policy's input
      features are the state vectors only (its network builds no image encoder);
    - after ``save_checkpoint``: every checkpoint, even of an interrupted run, gets its card (the dataset's
      scene, stats, block positions and features: ``libs.policy_api.card``; LeRobot saves the processors,
      the rest is ours) and, for a tiny backbone, its sizes; all of it written beside and renamed into
      place once whole (``resume.atomic_checkpoint_dir``), so a kill mid-save leaves no half checkpoint;
    - after ``update_policy``: the step's loss, learning rate and gradient norm appended to
      ``RUN/loss_log.jsonl`` (``resume.LossLog``);
    - before ``cycle``: the data loader gets its own generator, so that starting an epoch's iterator draws
      nothing from the global RNG (a resumed run, whose RNG state is the checkpoint's, would otherwise
      start its first iterator one draw off the killed run's sequence), and a resumed sampler keeps its
      epoch.
    """
    object_state = object_state or ObjectStateInputs()
    tiny_sizes = backbone_dir / TINY_BACKBONE_FILE if backbone_dir is not None else None
    seen: dict[str, Any] = {}
    loss_log = LossLog(out)
    wrappers = {
        "make_train_eval_datasets": lambda original: _datasets_hook(original, frames_in_memory, seen),
        "make_pre_post_processors": lambda original: _processors_hook(
            original, out, probe_workers, object_state, seen
        ),
        "make_policy": lambda original: _policy_hook(original, out, steps, save_freq, object_state, seen),
        "save_checkpoint": lambda original: _checkpoint_hook(original, dataset, tiny_sizes, object_state),
        "update_policy": lambda original: _loss_log_hook(original, loss_log),
        "cycle": lambda original: _cycle_hook(original, seed),
    }
    originals = {name: getattr(lerobot_train, name) for name in wrappers}
    for name, wrap in wrappers.items():
        setattr(lerobot_train, name, wrap(originals[name]))
    try:
        yield
    finally:
        loss_log.close()
        for name, original in originals.items():
            setattr(lerobot_train, name, original)


def _datasets_hook(original: Any, frames_in_memory: bool, seen: dict[str, Any]) -> Any:
    """``make_train_eval_datasets``, its training set held in memory (``frame_cache``) when it fits."""

    def make_datasets_and_keep(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        train_set, *rest = original(cfg, *args, **kwargs)
        # Every sample gathered once, frames decoded once (LeRobot's per-sample reads and video seeks
        # cost more than a small model's step on a CPU), unless it does not fit in memory.
        refusal = cache_refusal(train_set) if frames_in_memory else "--no-frame-cache"
        if refusal is None:
            if not is_vector_only(train_set):
                logger.info(f"decoding {frame_bytes(train_set) / 1024**3:.2f} GiB of frames into memory once")
            train_set = InMemoryFrames(train_set, progress=tqdm)
        else:
            logger.info(f"samples are read by LeRobot's dataset reader: {refusal}")
        seen["dataset"], seen["batch_size"] = train_set, cfg.batch_size
        return (train_set, *rest)

    return make_datasets_and_keep


def _processors_hook(
    original: Any,
    out: Path,
    probe_workers: Sequence[int],
    object_state: ObjectStateInputs,
    seen: dict[str, Any],
) -> Any:
    """``make_pre_post_processors`` plus our preprocessor steps, then the data-loader probe if asked."""

    def make_processors_then_probe(*args: Any, **kwargs: Any) -> Any:
        processors = original(*args, **kwargs)
        policy_config = kwargs.get("policy_cfg", args[0] if args else None)
        if policy_config is not None:
            add_depth_step(processors[0], policy_config.input_features)
            add_environment_state_step(processors[0], policy_config.type, policy_config.input_features)
        resumed_with_estimator = any(
            isinstance(step, EstimateObjectStateStep) for step in processors[0].steps
        )
        if object_state.estimator is not None and not resumed_with_estimator:
            insert_before_normalizer(processors[0], EstimateObjectStateStep.from_net(object_state.estimator))
        if probe_workers and "dataset" in seen and "policy" in seen:
            probe = _probe_loader(
                seen["dataset"], seen["batch_size"], seen["policy"], processors[0], probe_workers
            )
            out.mkdir(parents=True, exist_ok=True)
            (out / PREFLIGHT_FILE).write_text(probe.table() + "\n")
        return processors

    return make_processors_then_probe


def _policy_hook(
    original: Any,
    out: Path,
    steps: int,
    save_freq: int,
    object_state: ObjectStateInputs,
    seen: dict[str, Any],
) -> Any:
    """``make_policy`` (on the state vectors only without ``policy_cameras``), then the disk preflight."""

    def make_policy_then_preflight(*args: Any, **kwargs: Any) -> Any:
        if not object_state.policy_cameras:
            config, meta = kwargs.get("cfg", args[0] if args else None), kwargs.get("ds_meta")
            config.input_features = _state_features(meta.features)
        policy = original(*args, **kwargs)
        seen["policy"] = policy
        weights = sum(parameter.numel() for parameter in policy.parameters())
        trained = sum(parameter.numel() for parameter in policy.parameters() if parameter.requires_grad)
        checkpoint_bytes = 4 * weights + 2 * 4 * trained  # float32 weights + Adam's two moments
        try:
            plan = preflight.plan_disk(out, checkpoint_bytes, total_steps=steps, save_every=save_freq)
            preflight.check_disk(plan, report=logger.info)
        except preflight.PreflightError as error:
            raise TrainError(str(error)) from error
        return policy

    return make_policy_then_preflight


def _checkpoint_hook(
    original: Any, dataset: Path, tiny_sizes: Path | None, object_state: ObjectStateInputs
) -> Any:
    """``save_checkpoint``, then the checkpoint's card and (for a tiny backbone) its sizes."""

    def save_checkpoint_with_card(checkpoint_dir: Path, *args: Any, **kwargs: Any) -> None:
        with atomic_checkpoint_dir(Path(checkpoint_dir)) as scratch_dir:
            original(scratch_dir, *args, **kwargs)
            pretrained_dir = scratch_dir / PRETRAINED_DIR_NAME
            write_card(dataset, pretrained_dir, object_state_from_cameras=object_state.estimator is not None)
            if tiny_sizes is not None and tiny_sizes.is_file():
                shutil.copy2(tiny_sizes, pretrained_dir / TINY_BACKBONE_FILE)

    return save_checkpoint_with_card


def _cycle_hook(original: Any, seed: int) -> Any:
    """``cycle`` over a data loader whose iterators take their base seed from its own generator and whose
    sampler keeps the epoch it was resumed in."""

    def cycle_without_global_draws(dataloader: Any) -> Any:
        # accelerate's DataLoaderShard wraps the DataLoader that draws the seed when an iterator starts
        base = getattr(dataloader, "base_dataloader", dataloader)
        if isinstance(base, torch.utils.data.DataLoader) and base.generator is None:
            base.generator = torch.Generator().manual_seed(seed)
        # DataLoaderShard sets its sampler's epoch to its own iteration count as each iterator starts (0
        # first), which would send a sampler LeRobot resumed in a later epoch back to epoch 0's order
        sampler = getattr(getattr(dataloader, "batch_sampler", None), "sampler", None)
        if hasattr(sampler, "state_dict") and isinstance(getattr(dataloader, "iteration", None), int):
            dataloader.iteration = sampler.state_dict()["epoch"]
        return original(dataloader)

    return cycle_without_global_draws


def _loss_log_hook(original: Any, loss_log: LossLog) -> Any:
    """``update_policy``, then the step's loss, learning rate and gradient norm in the loss log."""

    def update_policy_and_log(train_metrics: Any, *args: Any, **kwargs: Any) -> Any:
        train_metrics, output = original(train_metrics, *args, **kwargs)
        meters = train_metrics.metrics
        # the loop counts the step (train_tracker.step()) right after this returns
        step = train_metrics.steps + 1
        loss_log.write(step, {name: float(meters[name].val) for name in ("loss", "lr", "grad_norm")})
        return train_metrics, output

    return update_policy_and_log


def _state_features(dataset_features: dict[str, Any]) -> dict[str, Any]:
    """The dataset's joint and object state as policy input features (no cameras)."""
    from lerobot.configs.types import FeatureType
    from lerobot.utils.feature_utils import dataset_to_policy_features

    features = dataset_to_policy_features(dataset_features)
    return {
        key: feature
        for key, feature in features.items()
        if feature.type in (FeatureType.STATE, FeatureType.ENV)
    }


def _object_state_inputs(
    policy: str,
    dataset: Path,
    features: dict[str, Any],
    estimator_dir: str | Path | None,
    policy_cameras: bool,
) -> ObjectStateInputs:
    """The estimator named by ``--object-state-estimator``, checked against the dataset's ``features``."""
    if estimator_dir is None:
        if not policy_cameras:
            raise TrainError(
                "--no-policy-cameras needs --object-state-estimator DIR (the cameras' only reader)"
            )
        return ObjectStateInputs()
    try:
        estimator = load_estimator(estimator_dir)
    except EstimatorError as error:
        raise TrainError(str(error)) from None
    missing = [key for key in estimator.config.camera_keys if key not in features]
    if missing or ENVIRONMENT_STATE_KEY not in features:
        lacks = ", ".join(missing or [ENVIRONMENT_STATE_KEY])
        raise TrainError(
            f"{dataset} lacks {lacks}, which the estimator in {estimator_dir} needs: train on a dataset "
            "recorded with the estimator's cameras and --environment-state"
        )
    if not policy_cameras and policy in STATE_ONLY_POLICIES:
        raise TrainError(f"{policy} needs camera images itself: drop --no-policy-cameras")
    return ObjectStateInputs(estimator=estimator, policy_cameras=policy_cameras)


def _probe_loader(
    dataset: Any, batch_size: int, policy: Any, preprocessor: Any, worker_counts: Sequence[int]
) -> preflight.LoaderProbe:
    """Samples/s of LeRobot's dataset per ``num_workers`` against a forward + backward pass (gradients are
    cleared afterwards: training starts exactly as it would have without the probe)."""

    def make_loader(workers: int) -> Any:
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=True)

    def step(batch: Any) -> None:
        loss, _ = policy.forward(preprocessor(dict(batch)))
        loss.backward()
        policy.zero_grad(set_to_none=True)

    probe = preflight.probe_data_loader(make_loader, worker_counts, batches=5, step=step)
    logger.info("preflight data loader (LeRobotDataset + DataLoader):\n%s", probe.table())
    return probe


def _shift_transforms(fraction: float) -> Any:
    """LeRobot's image transforms: off, or only a random translation of up to ``fraction``."""
    from lerobot.transforms.transforms import ImageTransformConfig, ImageTransformsConfig

    if not 0.0 <= fraction < 0.5:
        raise TrainError(f"--image-shift {fraction} must be a fraction of the image in [0, 0.5), e.g. 0.06")
    if fraction == 0.0:
        return ImageTransformsConfig(enable=False)
    shift = ImageTransformConfig(
        weight=1.0, type="RandomAffine", kwargs={"degrees": 0.0, "translate": (fraction, fraction)}
    )
    return ImageTransformsConfig(enable=True, max_num_transforms=1, tfs={"shift": shift})


def _check_vision_backbone(policy: str, name: str | None, backbone_dir: str | Path | None) -> None:
    """Refuse a ``vision_backbone`` override LeRobot would fail on later (or silently replace)."""
    if name is None:
        return
    if policy not in ("act", "diffusion"):
        raise TrainError(
            f"--vision-backbone applies to act and diffusion (their ResNet); {policy} has its own vision "
            "model: drop the flag"
        )
    if name not in VISION_BACKBONES:
        raise TrainError(f"unknown --vision-backbone {name!r}: use one of {', '.join(VISION_BACKBONES)}")
    if backbone_dir is not None and name != "resnet18":
        raise TrainError(
            "--backbone-dir holds ImageNet weights for torchvision's resnet18; "
            f"{name} trains from random weights: drop one of the two"
        )


#: ``preset``: the policy's own (ACT: constant; Diffusion: cosine to 0 at the run's last step); ``cosine``:
#: warm up linearly, then decay to ``lr_final_fraction`` of the policy's learning rate at the run's last
#: step; ``auto``: cosine for ``--preset state`` and for ACT's ``cpu`` preset (ACT-state on 200 demos under
#: 2.0° executed-action noise, 4,000 steps, the same seed: 95/100 seeds with it, 69/100 on the constant
#: rate; the vision ACT was measured with it), the policy's own otherwise.
LR_SCHEDULES: tuple[str, ...] = ("auto", "preset", "cosine")


def _cosine_by_default(policy: str, preset: str) -> bool:
    return preset == "state" or (policy == "act" and preset == "cpu")


def _use_cosine_schedule(config: TrainPipelineConfig, final_fraction: float, warmup_steps: int) -> None:
    """Swap the policy's schedule for a cosine decay that ends at this run's last step.

    LeRobot's presets are tuned for 100k-step runs (ACT keeps its learning rate constant); a short CPU run
    that ends on the full rate stops on a noisy iterate. The optimizer stays the policy's own preset (its
    per-group rates, e.g. ACT's backbone rate, are all scaled by the schedule)."""
    config.use_policy_training_preset = False
    config.optimizer = config.policy.get_optimizer_preset()
    peak = config.optimizer.lr
    steps = config.steps
    config.scheduler = CosineDecayWithWarmupSchedulerConfig(
        num_warmup_steps=min(warmup_steps, max(steps - 1, 0)),
        num_decay_steps=steps,
        peak_lr=peak,
        decay_lr=peak * final_fraction,
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _worker_counts(text: str) -> tuple[int, ...]:
    """``--probe-loader 0,2,4`` → (0, 2, 4); argparse turns the ValueError into a one-line usage error."""
    return tuple(int(part) for part in text.split(","))


#: --vision-backbone choices (scratch_backbones registers the GroupNorm ones with torchvision).
VISION_BACKBONES: tuple[str, ...] = (
    "resnet18",
    *(scratch_backbones.backbone_name(width) for width in scratch_backbones.WIDTHS),
)


@dataclass(frozen=True)
class TrainConfig:
    """One training run: each field with a flag is a train command option (its name written out, so that
    the docs' commands can be checked against this source).

    ``threads`` sets torch's CPU threads (the train command decides it from the free cores when not given,
    ``libs.compute_threads``); on a core shared with other jobs 1 is several times faster than torch's
    default (its OpenMP threads spin waiting for each other). ``frames_in_memory`` holds every
    sample (camera frames as uint8) in memory once, when it fits (``frame_cache``). ``image_shift`` > 0
    shifts every training camera frame by a random offset of up to that fraction of its width and height
    (LeRobot's ``RandomAffine`` image transform, translation only), the random-shift augmentation of
    image-based control. ``object_state_estimator`` (a ``train_estimator`` output) makes the policy read the
    object state from the cameras instead of the dataset; without ``policy_cameras`` the cameras reach
    the policy only through it. ``vision_backbone`` is a ``policy_overrides`` entry (which wins)."""

    policy: str = field(metadata=flag("", choices=POLICY_TYPES, required=True, name="--policy"))
    dataset: str | Path = field(
        metadata=flag(
            "LeRobot v3 dataset root (has meta/info.json)", parse=Path, required=True, name="--dataset"
        )
    )
    steps: int = field(metadata=flag("", required=True, name="--steps"))
    out: str | Path = field(
        metadata=flag(
            "new run directory (with --resume: the run to continue)", parse=Path, required=True, name="--out"
        )
    )
    resume: bool = field(
        default=False,
        metadata=flag(
            "continue the run in --out from its last complete checkpoint: weights, optimizer, scheduler, RNG "
            "and data order, the step count and loss log going on (a run without a checkpoint starts over)",
            name="--resume",
        ),
    )
    preset: str = field(
        default="cpu",
        metadata=flag("cpu: small models; gpu: LeRobot defaults", choices=PRESETS, name="--preset"),
    )
    batch_size: int | None = field(default=None, metadata=flag("", name="--batch-size"))
    save_freq: int | None = field(
        default=None,
        metadata=flag("checkpoint every N steps (default: only the last step)", name="--save-freq"),
    )
    vision_backbone: str | None = field(
        default=None,
        metadata=flag(
            "act/diffusion image encoder: resnet18 (LeRobot's, frozen batch norm: for ImageNet weights via "
            "--backbone-dir) or a GroupNorm ResNet-18 at base width 16/32/64 that trains from random weights "
            "(default: the preset's)",
            choices=VISION_BACKBONES,
            name="--vision-backbone",
        ),
    )
    backbone_dir: str | Path | None = field(
        default=None,
        metadata=flag(
            "local pretrained weights: a torchvision ResNet .pth (file or its folder) for act/diffusion, a "
            "SmolVLM model dir for smolvla, a LeRobot pi0 checkpoint dir for pi0",
            parse=Path,
            name="--backbone-dir",
        ),
    )
    tiny_backbone_dir: str | Path | None = field(
        default=None,
        metadata=flag(
            "smolvla/pi0 without real weights: build (or reuse) a tiny random backbone in DIR",
            name="--tiny-backbone",
            parse=Path,
            metavar="DIR",
        ),
    )
    tiny_backbone_scale: int = field(
        default=1,
        metadata=flag(
            "every width of the tiny backbone N times the smallest (default 1)",
            parse=_positive_int,
            metavar="N",
            name="--tiny-backbone-scale",
        ),
    )
    device: str | None = field(
        default=None, metadata=flag("cpu or cuda (default: cuda when available)", name="--device")
    )
    seed: int = field(default=1000, metadata=flag("", name="--seed"))
    #: None: the command decides (libs.compute_threads); train_policy callers get torch's default
    threads: int | None = field(default=None, metadata=flag(THREADS_HELP, name="--threads"))
    num_workers: int = field(default=0, metadata=flag("", name="--num-workers"))
    #: ``--probe-loader [COUNTS]`` (an optional value: ``build_parser`` adds it itself).
    probe_workers: Sequence[int] = ()
    lr_schedule: str = field(
        default="auto",
        metadata=flag(
            "preset: the policy's own; cosine: warm up, then decay to --lr-final-fraction at the last "
            "step; auto (default): cosine for --preset state and ACT's cpu preset, the policy's own "
            "otherwise",
            choices=LR_SCHEDULES,
            name="--lr-schedule",
        ),
    )
    image_shift: float = field(
        default=0.0,
        metadata=flag(
            "random-shift augmentation: move each training camera frame by up to this fraction of its "
            "size (e.g. 0.06; default 0: off)",
            metavar="FRACTION",
            name="--image-shift",
        ),
    )
    frames_in_memory: bool = field(
        default=True,
        metadata=flag(
            "read every sample through LeRobot's dataset reader (default: samples and frames held in "
            "memory once when they fit, several times faster on a CPU)",
            name="--no-frame-cache",
        ),
    )
    object_state_estimator: str | Path | None = field(
        default=None,
        metadata=flag(
            "read the object state from the cameras with this estimator (train-estimator's --out): the "
            "policy then needs no object state from the scene",
            parse=Path,
            metavar="DIR",
            name="--object-state-estimator",
        ),
    )
    policy_cameras: bool = field(
        default=True,
        metadata=flag(
            "with --object-state-estimator: the cameras reach act/diffusion only through the estimator "
            "(no image encoder in the policy; trains at state-based speed)",
            name="--no-policy-cameras",
        ),
    )
    lr_final_fraction: float = field(default=0.1, metadata=flag("", name="--lr-final-fraction"))
    lr_warmup_steps: int = field(default=100, metadata=flag("", name="--lr-warmup-steps"))
    log_freq: int = field(default=50, metadata=flag("", name="--log-freq"))
    wandb: bool = field(
        default=False, metadata=flag("log to Weights & Biases (off by default)", name="--wandb")
    )
    push_to_hub: bool = field(
        default=False, metadata=flag("push the final model (off by default)", name="--push-to-hub")
    )
    repo_id: str | None = field(default=None, metadata=flag("", name="--repo-id"))
    policy_overrides: dict[str, Any] | None = None

    def overrides(self) -> dict[str, Any]:
        """The policy config overrides: ``vision_backbone``, then ``policy_overrides``."""
        chosen = {"vision_backbone": self.vision_backbone} if self.vision_backbone else {}
        return {**chosen, **(self.policy_overrides or {})}


def train_policy(policy: str, dataset: str | Path, out: str | Path, steps: int, **options: Any) -> list[Path]:
    """Train and return the checkpoint directories (``<out>/checkpoints/NNNNNN``) in step order;
    ``options`` are ``TrainConfig``'s other fields (``preset=``, ``batch_size=``, ...)."""
    return run_training(TrainConfig(policy=policy, dataset=dataset, out=out, steps=steps, **options))


def run_training(config: TrainConfig) -> list[Path]:
    """Train as ``config`` says and return the checkpoint directories in step order."""
    _check_vision_backbone(config.policy, config.overrides().get("vision_backbone"), config.backbone_dir)
    dataset = Path(config.dataset).expanduser().resolve()
    out = Path(config.out).expanduser().resolve()
    features = _check_dataset(dataset, config.policy)
    object_state = _object_state_inputs(
        config.policy, dataset, features, config.object_state_estimator, config.policy_cameras
    )
    _check_run(config, out)
    resume_from = _resume_point(config, out)
    if resume_from is not None and resume_from.step == config.steps:
        print(f"{out} is already trained to step {config.steps}: nothing to resume", file=sys.stderr)
        return list_checkpoints(out)
    if config.wandb:
        os.environ["WANDB_MODE"] = "online"  # the backend's default is disabled
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    backbone_overrides, backbone_path = configure_backbone(
        config.policy,
        backbone_dir=config.backbone_dir,
        tiny_backbone_dir=config.tiny_backbone_dir,
        tiny_scale=config.tiny_backbone_scale,
    )
    pipeline = _pipeline_config(config, dataset, out, {**config.overrides(), **backbone_overrides})
    hooks = _lerobot_hooks(
        dataset,
        backbone_path,
        out,
        config.steps,
        pipeline.save_freq,
        config.probe_workers,
        config.frames_in_memory,
        object_state,
        config.seed,
    )
    lerobot_argv = _resume_in_lerobot(pipeline, resume_from)
    with _lerobot_cli_free(lerobot_argv), hooks, building_context(config.policy, backbone_path):
        _train_or_say_disk_full(pipeline, out)
    return list_checkpoints(out)


def _resume_point(config: TrainConfig, out: Path) -> ResumePoint | None:
    """With ``--resume``: the checkpoint to continue from, damaged later ones set aside and the loss log cut
    back to its step; None to train from step 0 (no complete checkpoint yet). Each decision is one line."""
    if not config.resume:
        return None
    point = find_resume_point(out) if out.is_dir() else ResumePoint(None)
    for checkpoint, problem in point.damaged:
        print(
            f"checkpoint {checkpoint} is incomplete ({problem}): set aside, resuming from the one before",
            file=sys.stderr,
        )
    if point.checkpoint is None:
        existed = out.is_dir()
        strangers = clear_fresh_run(out) if existed else []
        if strangers:
            raise TrainError(
                f"{out} has no checkpoint to resume and holds {', '.join(strangers[:3])}, which no training "
                "run writes: pass the run's own --out, or drop --resume and choose a new --out"
            )
        said = "has no complete checkpoint yet" if existed else "does not exist yet"
        print(f"--resume: {out} {said}: training from step 0", file=sys.stderr)
        return None
    trained_policy = json.loads((point.checkpoint / PRETRAINED_DIR_NAME / "config.json").read_text()).get(
        "type"
    )
    if trained_policy != config.policy:
        raise TrainError(
            f"{out} trains {trained_policy}, not {config.policy}: resume it with --policy {trained_policy}"
        )
    if point.step > config.steps:
        raise TrainError(
            f"{out} is already at step {point.step}, past --steps {config.steps}: pass --steps "
            f"{point.step} or more"
        )
    set_aside_damaged(point)
    truncate_loss_log(out, point.step)
    if point.step < config.steps:
        print(f"resuming {out} from its checkpoint at step {point.step}", file=sys.stderr)
    return point


def _resume_in_lerobot(pipeline: TrainPipelineConfig, resume_from: ResumePoint | None) -> list[str]:
    """Set ``pipeline`` to LeRobot's own resume from ``resume_from`` (it restores the weights, optimizer,
    scheduler, RNG state, step and data order); returns the ``--config_path`` its validation reads."""
    if resume_from is None or resume_from.checkpoint is None:
        return []
    pipeline.resume = True
    if pipeline.use_policy_training_preset:
        # LeRobot's CLI would read these back from train_config.json; a fresh run takes the policy's preset
        pipeline.optimizer = pipeline.policy.get_optimizer_preset()
        pipeline.scheduler = pipeline.policy.get_scheduler_preset()
    return [f"--config_path={resume_from.checkpoint / PRETRAINED_DIR_NAME}"]


def _train_or_say_disk_full(pipeline: TrainPipelineConfig, out: Path) -> None:
    """LeRobot's training loop; a full disk (a checkpoint save's ENOSPC) is one line naming what is safe."""
    try:
        lerobot_train.train(pipeline)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        last = find_resume_point(out)
        kept = (
            f"its checkpoint at step {last.step} is intact" if last.checkpoint else "it has no checkpoint yet"
        )
        raise TrainError(
            f"the disk filled up while training {out} ({error.strerror or 'no space left'}); {kept}: free "
            "some space, then run the same command with --resume"
        ) from None


def _check_run(config: TrainConfig, out: Path) -> None:
    """Refuse a run whose options cannot work, before anything is built."""
    if out.exists() and not config.resume:
        raise TrainError(
            f"output dir {out} already exists: add --resume to continue its training from its last "
            "checkpoint, or choose a new --out"
        )
    if config.steps < 1:
        raise TrainError(f"--steps must be at least 1, got {config.steps}")
    if config.lr_schedule not in LR_SCHEDULES:
        raise TrainError(
            f"unknown --lr-schedule {config.lr_schedule!r}: use one of {', '.join(LR_SCHEDULES)}"
        )
    if not 0 <= config.lr_final_fraction <= 1:
        raise TrainError(f"--lr-final-fraction must be in [0, 1], got {config.lr_final_fraction}")
    if config.push_to_hub and not config.repo_id:
        raise TrainError("--push-to-hub needs --repo-id <user/name>")
    if config.push_to_hub and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise TrainError(
            "--push-to-hub needs the hub, which this backend keeps off: run with HF_HUB_OFFLINE=0"
        )


def _pipeline_config(
    config: TrainConfig, dataset: Path, out: Path, overrides: dict[str, Any]
) -> TrainPipelineConfig:
    """LeRobot's ``TrainPipelineConfig`` for ``config`` (the policy's sizes from its preset)."""
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    policy_config = make_policy_config(config.policy, config.preset, device=device, overrides=overrides)  # type: ignore[arg-type]
    policy_config.push_to_hub = config.push_to_hub
    policy_config.repo_id = config.repo_id
    pipeline = TrainPipelineConfig(
        # PyAV decodes (torchcodec needs a system FFmpeg, and LeRobot's probe for it prints its load
        # failure); depth maps in metres, the env's unit, so the adapter feeds the env's depth as is.
        dataset=DatasetConfig(
            repo_id=f"local/{dataset.name}",
            root=str(dataset),
            video_backend="pyav",
            depth_output_unit="m",
            image_transforms=_shift_transforms(config.image_shift),
        ),
        policy=policy_config,
        output_dir=out,
        job_name=f"so101_{config.policy}",
        steps=config.steps,
        batch_size=config.batch_size or (8 if config.preset == "cpu" else 32),
        num_workers=config.num_workers,
        # One process: the default spawn start method would re-import torch in every worker.
        persistent_workers=False,
        dataloader_multiprocessing_context=None,
        save_freq=config.save_freq or config.steps,
        log_freq=config.log_freq,
        env_eval_freq=0,
        seed=config.seed,
        wandb=WandBConfig(enable=config.wandb, mode="online" if config.wandb else "disabled"),
    )
    schedule = config.lr_schedule
    if schedule == "cosine" or (schedule == "auto" and _cosine_by_default(config.policy, config.preset)):
        _use_cosine_schedule(pipeline, config.lr_final_fraction, config.lr_warmup_steps)
    return pipeline


def build_parser() -> argparse.ArgumentParser:
    """The train command's flags: ``TrainConfig``'s, in its order, and ``--probe-loader``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = [config_field.name for config_field, _, _ in flag_fields(TrainConfig)]
    before_probe = names.index("lr_schedule")
    add_flags(parser, TrainConfig, only=names[:before_probe])
    parser.add_argument(
        "--probe-loader",
        dest="probe_workers",
        nargs="?",
        type=_worker_counts,
        const=(0, 2),
        default=(),
        metavar="COUNTS",
        help="before step 0, time LeRobot's data loader for these num_workers (default 0,2) against a "
        "train step and recommend one",
    )
    add_flags(parser, TrainConfig, only=names[before_probe:])
    return parser


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_flags(TrainConfig, args, probe_workers=args.probe_workers)
    # One model; the data loader's worker processes keep a core each (they decode frames meanwhile).
    loaders = {"reserved": config.num_workers, "reserved_for": "data-loader workers"}
    config = replace(config, threads=decide_and_apply(1, config.threads, **loaders).threads)
    try:
        checkpoints = run_training(config)
    except ValueError as error:  # LeRobot's own config validation (e.g. a crop larger than the images)
        if isinstance(error, LabError):
            raise
        print(
            f"error: LeRobot refused the configuration: {str(error).strip().splitlines()[0]}", file=sys.stderr
        )
        return USAGE_EXIT_STATUS
    last = checkpoints[-1] / PRETRAINED_DIR_NAME
    print(f"trained {config.policy}: {len(checkpoints)} checkpoint(s), last {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
