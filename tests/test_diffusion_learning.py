"""Learning happened: short, seeded runs reach the real-data floor's neighbourhood."""

import pytest

from fewlabels import config as configlib
from fewlabels.loop import train


def short_run(tmp_path, data, *overrides):
    raw = {"family": "diffusion", "data": {"name": data}, "sampler": {"name": "ddim", "steps": 50},
           "optim": {"final_lr_fraction": 0.1},
           "train": {"steps": 2000, "snapshot_every": 0, "log_every": 500, "checkpoint_every": 2000},
           "eval": {"samples": 1000}}
    cfg = configlib.from_dict(configlib.apply_overrides(raw, list(overrides)))
    return train(cfg, str(tmp_path / "run"), device="cpu")["metrics"]


@pytest.mark.slow(seconds=16)
@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_ddpm_learns_the_swiss_roll_to_within_one_and_a_half_times_the_real_floor(tmp_path, prediction):
    m = short_run(tmp_path, "swissroll", f"model.prediction={prediction}")
    assert m["emd"] < 1.5 * m["real_emd"], m
