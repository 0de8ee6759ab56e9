"""The GAN report: the critic gap is named for what it is (K·W for a K-Lipschitz critic, not W),
runs that logged it as `w_estimate` still get the figure, and floors show as mean ± std."""

import json

import pytest

from conftest import write_config
from fewlabels.cli import main
from fewlabels.loop import open_run
from fewlabels.report import write_report


@pytest.fixture(scope="module")
def wgan_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wgan")
    cfg = write_config(tmp / "c.yaml", loss={"name": "wasserstein", "constraint": "clip"},
                       train={"steps": 60, "log_every": 20, "snapshot_every": 0, "checkpoint_every": 60})
    assert main(["train", str(cfg), "--out", str(tmp / "run"), "--device", "cpu"]) == 0
    return tmp / "run"


def report_of(run_dir) -> str:
    cfg, run, exp = open_run(str(run_dir), "cpu")
    return write_report(run, cfg, exp).read_text()


def test_the_report_names_the_critic_gap_and_says_it_estimates_k_times_w(wgan_run, capsys):
    html = report_of(wgan_run)
    assert "Critic gap" in html and "K·W" in html and "estimate of W" not in html
    assert (wgan_run / "samples" / "critic_gap.png").is_file()
    assert "±" in html and "draws" in html  # the EMD floor as mean ± std (n draws)


def test_a_run_that_logged_w_estimate_still_gets_the_critic_gap_figure(wgan_run, capsys):
    metrics = wgan_run / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    old = [{("w_estimate" if k == "critic_gap" else k): v for k, v in r.items()} for r in rows]
    assert any("w_estimate" in r for r in old)
    metrics.write_text("".join(json.dumps(r) + "\n" for r in old))
    (wgan_run / "samples" / "critic_gap.png").unlink(missing_ok=True)
    assert "Critic gap" in report_of(wgan_run)
    assert (wgan_run / "samples" / "critic_gap.png").is_file()
