import os
import sys
from pathlib import Path

import pytest
import torch
import yaml

os.environ.setdefault("CI", "true")  # quiet progress bars in tests
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, **sections) -> Path:
    """A small GAN config; sections override the defaults below key by key."""
    cfg = {"family": "gan", "name": "test", "data": {"name": "ring8"},
           "model": {"width": 32, "depth": 2},
           "train": {"steps": 200, "batch_size": 64, "log_every": 50, "snapshot_every": 100,
                     "checkpoint_every": 100},
           "eval": {"samples": 500, "emd_points": 200}}
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def small_config(tmp_path):
    return write_config(tmp_path / "small.yaml")


def cli_env() -> dict:
    env = dict(os.environ, CI="true", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


PYTHON = sys.executable
