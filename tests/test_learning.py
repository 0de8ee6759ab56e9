"""Learning happened: short, seeded runs that must capture modes an untrained G does not."""

import json

import pytest

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


@pytest.mark.slow(seconds=90)
def test_demo_quick_writes_one_page_linking_the_runs(tmp_path, capsys):
    """The whole demo once, with every part's figures checked on its page (the parts are not run
    again one by one: the demo is the slowest test, and running it twice bought nothing)."""
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    root = tmp_path / "demo"
    index = (root / "index.html").read_text()
    # the adversarial part: Theorem 1, the minimax runs, the manifold figure
    assert "Theorem 1" in index and "parallel lines" in index.lower()
    assert 'href="grid25_best/report.html"' in index and 'href="grid25_wgan_gp/report.html"' in index
    assert (root / "grid25_best" / "report.html").is_file()
    assert "1D manifold" in index and (root / "manifold_emd.png").is_file()
    # Progressive GAN's growth strip, titled by resolution and fade-in α
    assert "4×4, shown enlarged" in index and "8×8 at α = 0.40" in index
    assert (root / "digits_progan_growth.png").stat().st_size > 1000
    assert 'href="digits_progan/report.html"' in index and (root / "digits_progan" / "report.html").is_file()
    # BigGAN: asked for each digit, with class consistency beside the real held-out digits' score
    assert "BigGAN: a class-conditional GAN" in index and "class consistency %" in index
    assert (root / "digits_biggan" / "samples" / "per_class.png").stat().st_size > 1000
    assert (root / "digits_biggan" / "samples" / "truncation_strip.png").stat().st_size > 1000
    # diffusion: both processes, the comparison with the GAN, DDIM's table, in this order
    titles = ["Diffusion: the forward and the reverse process", "Diffusion next to the GAN", "DDIM: fewer steps"]
    at = [index.index(f"<h2>{t}</h2>") for t in titles]
    assert at == sorted(at)
    comparison = index[at[1]:at[2]]
    assert "diffusion_grid25" in comparison and "hq_percent" in comparison
    assert (root / "diffusion_vs_gan.png").is_file()
    # the grid world: the lecture's figures
    assert "random policy vs optimal policy" in index and "Figure 4.1" in index and "CliffWalking" in index
    for name in ("figure_4_1.png", "random_vs_optimal.png", "maze_values.png", "frozenlake.png",
                 "cliff_returns.png", "cliff_paths.png"):
        assert (root / name).stat().st_size > 1000
    # few labels: the SSL GAN beside supervised-only, accuracy curves and the confusion matrix
    assert "Learning with few labels" in index and 'href="digits_ssl_gan/report.html"' in index
    assert (root / "few_labels_accuracy.png").stat().st_size > 1000
    assert (root / "digits_ssl_gan" / "samples" / "confusion.png").stat().st_size > 1000
