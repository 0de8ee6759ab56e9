"""Runs survive SIGTERM and resume bitwise: the acceptance test of the spine."""

import subprocess

import pytest

from conftest import assert_bitwise_equal, cli_env, final_state, interrupt_mid_run, train_cmd, write_config
from fewlabels.run import RunDir


@pytest.mark.slow(seconds=25)
def test_sigterm_checkpoints_and_resume_is_bitwise_equal_to_an_uninterrupted_run(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", loss={"r1_weight": 0.1},
                       train={"steps": 1500, "log_every": 25, "checkpoint_every": 500, "snapshot_every": 0})
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    subprocess.run(train_cmd(cfg, straight), check=True, env=cli_env(), capture_output=True)

    stopped_at = interrupt_mid_run(cfg, broken)
    assert RunDir(broken).read_summary()["status"] == "interrupted"
    assert 0 < stopped_at < 1500, "the signal must land mid-training"

    resumed = subprocess.run(train_cmd(cfg, broken), env=cli_env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {broken} from step {stopped_at}" in resumed.stderr
    a, step_a = final_state(straight)
    b, step_b = final_state(broken)
    assert step_a == step_b == 1500
    assert_bitwise_equal(a, b)
    steps = [r["step"] for r in RunDir(broken).read_metrics() if "loss_d" in r]
    assert steps == sorted(set(steps)), "no step is logged twice after a resume"
