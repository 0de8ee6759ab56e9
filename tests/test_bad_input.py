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
    # resuming longer must read it (the same steps again would find the run complete and read nothing)
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--out", run, "--set", "train.steps=400"))
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


# ---- every file goes through fewlabels.files: OS and decoding errors are one sentence ---------------
def test_config_that_is_not_utf8_text(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes("family: gan\nname: café\n".encode("latin-1"))
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--out", tmp_path / "r"))
    assert "c.yaml" in msg and "not UTF-8" in msg and "byte 0xe9" in msg
    assert not (tmp_path / "r").exists()


def test_config_that_is_a_folder(tmp_path, capsys):
    msg = one_sentence_error(*run_cli(capsys, "train", tmp_path, "--out", tmp_path / "r"))
    assert "is a folder; give a YAML file in it" in msg


def test_out_below_a_file(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml")
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--out", cfg / "run"))
    assert "c.yaml/run" in msg and "a part of its path is a file" in msg


def test_sample_into_a_folder_that_does_not_exist(trained_run, tmp_path, capsys):
    _, run = trained_run
    before = snapshot_files(tmp_path)
    msg = one_sentence_error(*run_cli(capsys, "sample", run, "--n", 10, "--out", tmp_path / "nodir" / "x.npy"))
    assert "nodir/x.npy" in msg and "its folder" in msg and "does not exist" in msg
    assert snapshot_files(tmp_path) == before


def test_sample_onto_a_folder_keeps_the_folder(trained_run, tmp_path, capsys):
    _, run = trained_run
    (tmp_path / "x.npy").mkdir()
    msg = one_sentence_error(*run_cli(capsys, "sample", run, "--n", 10, "--out", tmp_path / "x.npy"))
    assert "x.npy" in msg and "it is a folder" in msg
    assert (tmp_path / "x.npy").is_dir()


def test_sample_overwrites_atomically_and_leaves_no_temporary(trained_run, tmp_path, capsys):
    _, run = trained_run
    out = tmp_path / "x.npy"
    assert run_cli(capsys, "sample", run, "--n", 10, "--out", out)[0] == 0
    assert run_cli(capsys, "sample", run, "--n", 12, "--out", out)[0] == 0
    assert np.load(out).shape == (12, 2)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_seed_numpy_cannot_take(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml")
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--seed", 2**40, "--out", tmp_path / "r"))
    assert "--seed is 1099511627776; valid seeds are 0 to 4294967295" in msg
    msg = one_sentence_error(*run_cli(capsys, "train", cfg, "--set", "seed=-1", "--out", tmp_path / "r"))
    assert "seed is -1; valid values are >= 0" in msg


def test_disk_full_while_checkpointing_keeps_the_last_checkpoint(trained_run, capsys, monkeypatch):
    import errno
    import os

    cfg, run = trained_run
    before = {p: b for p, b in snapshot_files(run).items() if "checkpoints" in str(p)}

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, err = run_cli(capsys, "train", cfg, "--out", run, "--set", "train.steps=150")
    msg = one_sentence_error(code, err.splitlines()[-1])  # after the line saying it resumes
    assert "checkpoint" in msg and "step_000000150" in msg and "the disk is full" in msg
    assert {p: b for p, b in snapshot_files(run).items() if "checkpoints" in str(p)} == before


def test_a_stray_os_error_is_one_sentence(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    # The demo (not routed through fewlabels.files) creates its folder itself: the CLI's last line of defence.
    msg = one_sentence_error(*run_cli(capsys, "demo", "--quick", "--out", blocker / "demo"))
    assert "file/demo" in msg


def test_garbled_metrics_lines_are_skipped_on_resume(trained_run, capsys):
    cfg, run = trained_run
    metrics = run / "metrics.jsonl"
    metrics.write_bytes(metrics.read_bytes() + b'[1, 2]\n{"step": "x"}\n\xff\xfe\n{"step": 3, "eval_seconds": "z"}\n')
    assert run_cli(capsys, "train", cfg, "--out", run, "--set", "train.steps=120")[0] == 0
    rows = RunDir(run).read_metrics()
    assert all(isinstance(r["step"], int) for r in rows) and rows[-1]["step"] == 120
    assert b"[1, 2]" not in (run / "metrics.jsonl").read_bytes()


def test_disk_full_outside_fewlabels_files_is_one_sentence(trained_run, capsys, monkeypatch):
    import errno

    cfg, run = trained_run
    before = {p: b for p, b in snapshot_files(run).items() if "checkpoints" in str(p)}

    def full(*args, **kwargs):  # as a write() on a full disk raises: no file name
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)  # the GAN's sample snapshots
    code, err = run_cli(capsys, "train", cfg, "--out", run, "--set", "train.steps=150")
    msg = one_sentence_error(code, err.splitlines()[-1])
    assert "the disk is full" in msg and "run the same command again" in msg
    assert {p: b for p, b in snapshot_files(run).items() if "checkpoints" in str(p)} == before


def test_output_piped_into_a_reader_that_closes_early_ends_without_a_traceback():
    """`fewlabels plan --json | head -c 20`: the reader goes away before we finish writing."""
    import subprocess

    from conftest import PYTHON, cli_env

    proc = subprocess.Popen([PYTHON, "-m", "fewlabels", "plan", "--rows", "30", "--cols", "30", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    proc.stdout.close()  # closed before the command has printed anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
