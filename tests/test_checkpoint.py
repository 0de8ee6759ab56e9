import random

import numpy as np
import pytest
import torch

from fewlabels import checkpoint
from fewlabels.errors import UserError


def test_state_round_trips_tensors_numbers_and_int_keys(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), fused=True)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"net": net.state_dict(), "opt": opt.state_dict(), "step": 7, "name": "x", "none": None}
    path = checkpoint.save(tmp_path / "c.safetensors", state, {"family": "gan", "step": 7})
    back, info = checkpoint.load(path)
    assert info["step"] == 7 and back["step"] == 7 and back["none"] is None
    for k, v in net.state_dict().items():
        assert torch.equal(back["net"][k], v)
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), fused=True)
    opt2.load_state_dict(back["opt"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_rng_states_restore_every_generator(tmp_path):
    checkpoint.seed_everything(3)
    np.random.randn()  # leave a cached gaussian behind
    random.gauss(0, 1)
    checkpoint.save(tmp_path / "r.safetensors", {"rng": checkpoint.rng_state()}, {})
    expected = (torch.rand(3), np.random.randn(3), random.gauss(0, 1))
    state, _ = checkpoint.load(tmp_path / "r.safetensors")
    checkpoint.set_rng_state(state["rng"])
    got = (torch.rand(3), np.random.randn(3), random.gauss(0, 1))
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_save_is_atomic_no_temporary_left(tmp_path):
    checkpoint.save(tmp_path / "a.safetensors", {"x": torch.ones(2)}, {})
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


def test_truncated_file_is_one_clear_error(tmp_path):
    p = checkpoint.save(tmp_path / "a.safetensors", {"x": torch.ones(1000)}, {})
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(UserError, match="is corrupt or truncated"):
        checkpoint.load(p)


def test_a_file_that_is_not_ours_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2)}, tmp_path / "other.safetensors")
    with pytest.raises(UserError, match="is not a fewlabels checkpoint"):
        checkpoint.load(tmp_path / "other.safetensors")


def test_expectations_name_what_differs(tmp_path):
    p = checkpoint.save(tmp_path / "a.safetensors", {}, {"family": "gan", "signature": "0.w:2x3"})
    with pytest.raises(UserError, match="belongs to another model: its signature is"):
        checkpoint.load(p, expect={"family": "gan", "signature": "0.w:4x3"})


def test_a_folder_where_the_checkpoint_should_be(tmp_path):
    (tmp_path / "a.safetensors").mkdir()
    with pytest.raises(UserError, match=r"checkpoint .*a.safetensors' could not be read \(it is a folder"):
        checkpoint.load(tmp_path / "a.safetensors")


def test_a_header_whose_tree_names_a_missing_tensor_is_corrupt(tmp_path):
    p = checkpoint.save(tmp_path / "a.safetensors", {"w": torch.ones(2)}, {"step": 1})
    raw = p.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + n].replace(b'\\"__tensor__\\": \\"/w', b'\\"__tensor__\\": \\"/v')
    assert len(header) == n
    p.write_bytes(raw[:8] + header + raw[8 + n:])
    with pytest.raises(UserError, match="is corrupt or truncated"):
        checkpoint.load(p)


def test_disk_full_leaves_the_old_checkpoint_and_no_temporary(tmp_path, monkeypatch):
    import errno
    import os

    p = checkpoint.save(tmp_path / "a.safetensors", {"w": torch.ones(2)}, {"step": 1})
    before = p.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match=r"could not be written \(the disk is full\)"):
        checkpoint.save(p, {"w": torch.zeros(2)}, {"step": 2})
    assert p.read_bytes() == before and [q.name for q in tmp_path.iterdir()] == ["a.safetensors"]
