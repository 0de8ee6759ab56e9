"""benchmarks/gpu_suite.py, the one script that yields every GPU figure, runs a few CPU steps of
each job here (CI has no GPU), and a second call resumes instead of starting again."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow(seconds=85)
def test_gpu_suite_smoke_runs_every_job_and_a_second_call_trains_nothing_again(tmp_path):
    from fewlabels.data.images import IDX_DEFAULT_ROOTS

    if not Path(IDX_DEFAULT_ROOTS["fashion_mnist"]).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_suite

    out = tmp_path / "gpu"
    assert gpu_suite.main(["--out", str(out), "--smoke"]) == 0
    rows = {r["job"]: r for r in json.loads((out / "results.json").read_text())}
    for job in ("fashion_dcgan", "fashion_diffusion", "pong_ppo", "biggan", "go9"):
        assert rows[job]["status"] == "completed", rows[job]
    for job in ("fashion_dcgan", "fashion_diffusion", "biggan"):
        assert rows[job]["fd"] > 0 and rows[job]["real_fd"] >= 0
        samples = np.load(out / job / "samples10k.npy")
        assert samples.dtype.name == "uint8" and samples.shape[1:] == (1, 28, 28)
    assert rows["pong_ppo"]["curve_points"] >= 1
    assert rows["go9"]["steps"] == 4 and "gnugo:1" in rows["go9"]["then, here"]
    # what comes back from the GPU machine to play from: the network without the replay buffer, which plays
    from fewlabels.rl.go.load import load_player
    from fewlabels.run import RunDir

    play, full = RunDir(out / "go9_play").latest_checkpoint(), RunDir(out / "go9").latest_checkpoint()
    assert play.name == full.name and play.stat().st_size < full.stat().st_size / 2, (play, full)
    player = load_player(str(out / "go9_play"), simulations=2)
    player.new_game(9, 7.5)
    assert 0 <= player.genmove(1) < 82 and len(player.moves) == 1
    checkpoints = {job: sorted(p.name for p in (out / job / "checkpoints").iterdir()) for job in rows}
    metrics = {job: (out / job / "metrics.jsonl").read_text() for job in checkpoints}

    assert gpu_suite.main(["--out", str(out), "--smoke"]) == 0  # everything finished: nothing is trained again
    for job, names in checkpoints.items():
        assert sorted(p.name for p in (out / job / "checkpoints").iterdir()) == names
        assert (out / job / "metrics.jsonl").read_text() == metrics[job]


@pytest.mark.slow(seconds=12)
def test_biggan_scaling_trains_and_scores_one_run_and_plots_the_table(tmp_path):
    """benchmarks/biggan_scaling.py's parts on the digits (the study itself is hours of CPU)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import biggan_scaling

    args = {"out": str(tmp_path), "set": ["train.batch_size=8"], "channels": 1, "config": "gan/digits_biggan.yaml",
            "samples": 100, "extractor": "classifier", "device": "cpu"}
    row = biggan_scaling.train_one({"batch": 4, "width": 2, "updates": 2, "args": args})
    assert row["images seen by D"] == 2 * 8 * 4 * 2 and row["width"] == "x2 (8 ch)"
    for key in ("fd", "kid", "precision", "recall", "class_consistency", "intra_fd", "train s"):
        assert np.isfinite(row[key]), key
    rows = [{**row, "_batch": b, "_width": 1, "_divisor": d} for b, d in ((1, 1), (4, 1), (8, 1), (4, 4), (8, 8))]
    biggan_scaling.plot(rows, tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").stat().st_size > 1000


@pytest.mark.slow(seconds=4)
def test_playable_copy_of_a_ppo_run_drops_the_pool_of_past_selves_and_still_plays(tmp_path):
    """gpu_suite.playable_copy also takes a PPO Go run: its pool of past selves (10 networks on 7x7,
    3.4 of a checkpoint's 4.5 MB) is left out, the network it plays with is kept as it was."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch

    import gpu_suite
    from fewlabels import checkpoint
    from fewlabels.cli import main
    from fewlabels.rl.go.load import load_player
    from fewlabels.run import RunDir
    from test_go import go_config

    cfg = go_config(tmp_path, algo="ppo",
                    ppo={"parallel_games": 4, "pool_every": 4, "pool_size": 2, "minibatch_size": 16})
    run = tmp_path / "ppo"
    assert main(["train", str(cfg), "--out", str(run), "--device", "cpu"]) == 0
    full, _ = checkpoint.load(RunDir(run).latest_checkpoint())
    assert len(full["experiment"]["pool"]) == 2

    play = gpu_suite.playable_copy(run, tmp_path / "ppo_play")
    small, _ = checkpoint.load(RunDir(play).latest_checkpoint())
    assert small["experiment"]["pool"] == []
    for key, value in full["experiment"]["net"].items():
        assert torch.equal(small["experiment"]["net"][key], value), key
    player = load_player(str(play), simulations=2)
    player.new_game(5, 24.5)
    assert 0 <= player.genmove(1) < 26 and len(player.moves) == 1
