"""Learning happened: short, seeded runs that must capture modes an untrained G does not."""

import json

from conftest import write_config
from fewlabels.cli import main


def test_nonsaturating_r1_captures_every_ring8_mode_in_seconds(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", model={"width": 64, "depth": 3},
                       loss={"r1_weight": 0.1}, optim={"lr_g": 2e-3, "lr_d": 2e-3, "final_lr_fraction": 0.05},
                       train={"steps": 1500, "batch_size": 256, "snapshot_every": 0, "checkpoint_every": 1500},
                       eval={"samples": 2500, "emd_points": 500})
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["modes"] == 8 and m["hq_percent"] > 50, m


def test_an_untrained_generator_does_not_pass_that_bar(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", model={"width": 64, "depth": 3},
                       train={"steps": 1, "snapshot_every": 0}, eval={"samples": 2500, "emd_points": 500})
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["modes"] < 8 or m["hq_percent"] < 50


def test_demo_quick_writes_one_page_linking_the_runs(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    index = (tmp_path / "demo" / "index.html").read_text()
    assert "Theorem 1" in index and "parallel lines" in index.lower()
    assert 'href="grid25_best/report.html"' in index and 'href="grid25_wgan_gp/report.html"' in index
    assert (tmp_path / "demo" / "grid25_best" / "report.html").is_file()
    assert "1D manifold" in index and (tmp_path / "demo" / "manifold_emd.png").is_file()
