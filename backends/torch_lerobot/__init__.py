"""LeRobot (PyTorch) backend: train ACT, Diffusion, SmolVLA and Pi0 with LeRobot; adapt them to Policy.

Nothing in this backend may reach a model hub: the hub clients read these variables when they are first
imported, so they are set here, before any submodule imports ``huggingface_hub`` or ``transformers``.
A user who really wants the hub sets the variables to 0 in their shell.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
