"""Bad input: one sentence on stderr, exit code 2, nothing already saved overwritten."""

import numpy as np
import pytest

from conftest import write_config
from fewlabels.cli import main
from fewlabels.run import RunDir


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    return code, err


def one_sentence_error(code, err):
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fewlabels: error: "), err
    assert "Traceback" not in err
    return lines[0]


def snapshot_files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_unknown_key(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", train={"stpes": 3})
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--out", tmp_path / "r"))
    assert "c.yaml" in msg and "train.stpes" in msg and "did you mean 'steps'" in msg
    assert not (tmp_path / "r").exists()


def test_wrong_type_from_the_command_line(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml")
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--set", "train.batch_size=big", "--out", tmp_path / "r"))
    assert "train.batch_size is 'big'; expected an integer" in msg


def test_missing_config_file(tmp_path, capsys):
    msg = one_sentence_error(*run_cli(capsys, "train", tmp_path / "nope.yaml"))
    assert "nope.yaml" in msg and "does not exist" in msg


def test_missing_data_file(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", data={"name": "file", "path": str(tmp_path / "points.npy")})
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--out", tmp_path / "r"))
    assert "points.npy" in msg and "does not exist" in msg


def test_nan_in_data(tmp_path, capsys):
    pts = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    pts[17, 1] = np.nan
    np.save(tmp_path / "points.npy", pts)
    cfg = write_config(tmp_path / "c.yaml", data={"name": "file", "path": str(tmp_path / "points.npy")})
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--out", tmp_path / "r"))
    assert "NaN" in msg and "row 17" in msg


def test_wrong_shape_in_csv(tmp_path, capsys):
    (tmp_path / "p.csv").write_text("1,2\n3,4\n")
    cfg = write_config(tmp_path / "c.yaml", data={"name": "file", "path": str(tmp_path / "p.csv")})
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--out", tmp_path / "r"))
    assert "p.csv" in msg and "shape (2, 2)" in msg


@pytest.fixture
def trained_run(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", train={"steps": 100, "checkpoint_every": 50})
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    return cfg, tmp_path / "run"


def test_truncated_checkpoint_is_reported_and_kept(trained_run, capsys):
    cfg, run = trained_run
    ckpt = RunDir(run).latest_checkpoint()
    ckpt.write_bytes(ckpt.read_bytes()[:300])
    before = snapshot_files(run)
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--out", run))
    assert ckpt.name in msg and "corrupt or truncated" in msg
    assert snapshot_files(run) == before
    one_sentence_error(*run_cli(capsys, "sample", run, "--n", 5, "--out", run / "s.npy"))
    assert snapshot_files(run) == before


def test_checkpoint_of_another_model_is_refused(trained_run, tmp_path, capsys):
    _, run_a = trained_run
    cfg_b = write_config(tmp_path / "b.yaml", model={"width": 48})
    run_b = tmp_path / "run_b"
    (run_b / "checkpoints").mkdir(parents=True)
    foreign = RunDir(run_a).latest_checkpoint()
    (run_b / "checkpoints" / foreign.name).write_bytes(foreign.read_bytes())
    before = snapshot_files(run_b)
    msg = one_sentence_error(*run_cli(capsys, "train", cfg_b, "--out", run_b))
    assert "belongs to another model" in msg and "signature" in msg
    assert {p: b for p, b in snapshot_files(run_b).items() if "checkpoints" in str(p)} == before


def test_another_config_in_the_same_run_directory(trained_run, tmp_path, capsys):
    _, run = trained_run
    other = write_config(tmp_path / "o.yaml", loss={"name": "hinge"})
    before = snapshot_files(run)
    msg = one_sentence_error(*run_cli(capsys, "train", other, "--out", run))
    assert "loss.name" in msg and "new --out" in msg
    assert snapshot_files(run) == before


def test_sample_from_a_folder_that_is_not_a_run(tmp_path, capsys):
    msg = one_sentence_error(*run_cli(capsys, "sample", tmp_path, "--n", 5, "--out", tmp_path / "s.npy"))
    assert "not a run directory" in msg


def test_cuda_on_a_machine_without_it(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = write_config(tmp_path / "c.yaml")
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--device", "cuda", "--out", tmp_path / "r"))
    assert "no CUDA GPU" in msg
