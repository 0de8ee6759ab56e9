"""Runs behave as a newcomer expects (issue 12): every verb uses the run's threads; a run that
failed before its first step does not block the corrected command; relative paths follow the
config file; a finished run re-run is left untouched; extending a run keeps its schedules; one
Ctrl-C stops the demo; one evaluation schema; the sampler is chosen at `sample` time."""

import json
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
import yaml

from conftest import PYTHON, cli_env, write_config
from fewlabels.cli import main


def tree(folder):
    """Every file under `folder` with its bytes: a run directory, byte for byte."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sample_and_eval_use_the_runs_thread_count(tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path / "c.yaml", train={"steps": 4, "threads": 1, "snapshot_every": 0},
                       eval={"samples": 100, "emd_points": 50})
    out = tmp_path / "r"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    monkeypatch.delenv("FEWLABELS_MAX_THREADS", raising=False)
    try:
        for argv in (["sample", str(out), "--n", "10", "--out", str(tmp_path / "s.npy")], ["eval", str(out)]):
            torch.set_num_threads(2)
            assert main(argv) == 0
            assert torch.get_num_threads() == 1, argv[0]
    finally:
        torch.set_num_threads(1)


def test_a_run_that_failed_before_its_first_step_does_not_block_the_corrected_config(tmp_path, capsys):
    out = tmp_path / "r"
    bad = write_config(tmp_path / "c.yaml", data={"name": "file", "path": str(tmp_path / "typo.csv")},
                       train={"steps": 3, "snapshot_every": 0}, eval={"samples": 100, "emd_points": 50})
    assert main(["train", str(bad), "--out", str(out)]) == 2
    np.savetxt(tmp_path / "points.csv", np.random.default_rng(0).normal(size=(300, 2)), delimiter=",")
    good = write_config(tmp_path / "c.yaml", data={"name": "file", "path": str(tmp_path / "points.csv")},
                        train={"steps": 3, "snapshot_every": 0}, eval={"samples": 100, "emd_points": 50})
    capsys.readouterr()
    assert main(["train", str(good), "--out", str(out)]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["status"] == "completed"


def test_relative_data_paths_follow_the_config_file_and_the_run_works_from_anywhere(tmp_path, monkeypatch, capsys):
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    np.savetxt(tmp_path / "project" / "data" / "points.csv", np.random.default_rng(0).normal(size=(300, 2)),
               delimiter=",")
    cfg = write_config(tmp_path / "project" / "c.yaml", data={"name": "file", "path": "data/points.csv"},
                       train={"steps": 3, "snapshot_every": 0}, eval={"samples": 100, "emd_points": 50})
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 0, capsys.readouterr().err
    stored = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["data"]["path"]
    assert stored == str(tmp_path / "project" / "data" / "points.csv")
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(tmp_path / "r"), "--n", "5", "--out", "s.npy"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 2)


def test_a_finished_run_samples_after_its_data_file_moved_and_eval_says_it_needs_it(tmp_path, capsys):
    data = tmp_path / "points.csv"
    np.savetxt(data, np.random.default_rng(0).normal(size=(300, 2)), delimiter=",")
    cfg = write_config(tmp_path / "c.yaml", data={"name": "file", "path": str(data)},
                       train={"steps": 3, "snapshot_every": 0}, eval={"samples": 100, "emd_points": 50})
    out = tmp_path / "r"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    data.rename(tmp_path / "moved.csv")
    capsys.readouterr()
    assert main(["sample", str(out), "--n", "7", "--out", str(tmp_path / "s.npy")]) == 0, capsys.readouterr().err
    assert np.load(tmp_path / "s.npy").shape == (7, 2)
    assert main(["eval", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(data) in err and "the data metrics of `eval` compare with it" in err


def test_rerunning_a_finished_run_leaves_its_directory_byte_for_byte_unchanged(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", train={"steps": 20, "log_every": 10, "snapshot_every": 10,
                                                    "checkpoint_every": 10}, eval={"samples": 100, "emd_points": 50})
    out = tmp_path / "r"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    before = tree(out)
    for extra in ([], ["--set", "train.steps=10"]):
        assert main(["train", str(cfg), "--out", str(out), *extra]) == 0
        again = capsys.readouterr()
        assert "is complete (step 20 of" in again.err
        assert json.loads(again.out)["metrics"] == first["metrics"]
        assert tree(out) == before


def test_extending_a_run_keeps_the_horizon_of_its_learning_rate_decay(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", optim={"lr_g": 1e-3, "lr_d": 1e-3, "final_lr_fraction": 0.1},
                       train={"steps": 20, "snapshot_every": 0, "checkpoint_every": 10},
                       eval={"samples": 100, "emd_points": 50})
    out = tmp_path / "r"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=40"]) == 0
    assert "run over the first 20 steps (train.schedule_steps" in capsys.readouterr().err
    saved = yaml.safe_load((out / "config.yaml").read_text())["train"]
    assert saved["steps"] == 40 and saved["schedule_steps"] == 20
    assert "run over the first 20 steps" in (out / "report.html").read_text()  # the report says so
    from fewlabels.loop import open_run

    _, _, exp = open_run(str(out), "cpu")
    for step, fraction in ((11, 1 - 0.9 * 10 / 19), (20, 0.1), (30, 0.1), (40, 0.1)):
        exp._set_learning_rates(step)
        assert exp.opt_G.param_groups[0]["lr"] == pytest.approx(1e-3 * fraction), step


@pytest.mark.slow(seconds=10)
def test_one_interrupt_stops_the_whole_demo_with_a_nonzero_exit(tmp_path):
    out = tmp_path / "demo"
    cmd = [PYTHON, "-m", "fewlabels", "demo", "--quick", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = out / "grid25_best" / "metrics.jsonl"  # the first stage that trains
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err.decode()
    assert not (out / "grid25_wgan_gp").exists() and not (out / "index.html").exists()  # no later stage ran
    assert any((out / "grid25_best" / "checkpoints").iterdir())  # the stage that was running saved


def test_rl_evaluation_has_one_schema_and_a_flag_that_does_not_apply_is_refused(tmp_path, capsys):
    from conftest import ROOT

    rl = tmp_path / "ppo"
    assert main(["train", str(ROOT / "configs" / "rl" / "cartpole_ppo.yaml"), "--out", str(rl),
                 "--set", "train.steps=512", "--set", "eval.episodes=2", "--set", "eval.gif=false"]) == 0
    summary = json.loads(capsys.readouterr().out)
    keys = {"mean_return", "std_return", "episodes"}
    assert set(summary["metrics"]) - {"eval_seconds"} == keys
    for extra in ([], ["--episodes", "3"]):
        assert main(["eval", str(rl), *extra]) == 0
        assert set(json.loads(capsys.readouterr().out)) == keys
    gan = tmp_path / "gan"
    cfg = write_config(tmp_path / "c.yaml", train={"steps": 2, "snapshot_every": 0},
                       eval={"samples": 100, "emd_points": 50})
    assert main(["train", str(cfg), "--out", str(gan)]) == 0
    capsys.readouterr()
    assert main(["eval", str(gan), "--episodes", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(--episodes) applies to RL runs" in err and "eval.samples" in err


def test_the_diffusion_sampler_is_chosen_at_sample_time(tmp_path, capsys):
    from test_diffusion_runs import write_diffusion_config

    cfg = write_diffusion_config(tmp_path / "c.yaml", sampler={"name": "ddpm"},
                                 train={"steps": 20, "snapshot_every": 0, "checkpoint_every": 20})
    out = tmp_path / "r"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    files = {}
    for name, extra in (("ddpm", []), ("ddim", ["--set", "sampler.name=ddim", "--set", "sampler.steps=5"])):
        files[name] = tmp_path / f"{name}.npy"
        assert main(["sample", str(out), "--n", "50", "--out", str(files[name]), *extra]) == 0
    assert not np.allclose(np.load(files["ddpm"]), np.load(files["ddim"]))
    assert yaml.safe_load((out / "config.yaml").read_text())["sampler"]["name"] == "ddpm"  # the run is unchanged
    capsys.readouterr()
    assert main(["sample", str(out), "--n", "5", "--out", str(tmp_path / "x.npy"), "--set", "model.width=8"]) == 2
    assert "only eval.* and sampler.* keys can be set" in capsys.readouterr().err


def test_a_time_budget_ends_the_run_there_and_a_larger_one_resumes_it(tmp_path, capsys):
    """train.max_minutes: the run stops at the first step past its training time (evaluation not
    counted), evaluates and counts as complete; re-run, it changes nothing; a larger budget resumes it."""
    cfg = write_config(tmp_path / "c.yaml", train={"steps": 10**6, "log_every": 50, "snapshot_every": 0,
                                                    "eval_every": 0, "checkpoint_every": 10**5, "max_minutes": 0.01},
                       eval={"samples": 100, "emd_points": 50})
    out = tmp_path / "r"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["status"] == "completed" and 0 < first["steps"] < 10**6
    assert 0.6 <= first["training_seconds"] < first["wall_seconds"]
    before = tree(out)
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    assert "is complete" in capsys.readouterr().err and tree(out) == before
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.max_minutes=0.02"]) == 0
    err = capsys.readouterr()
    second = json.loads(err.out)
    assert f"resuming {out} from step {first['steps']}" in err.err
    assert second["steps"] > first["steps"] and second["training_seconds"] >= 1.2
