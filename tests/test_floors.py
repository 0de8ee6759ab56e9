"""Real-vs-real floors: two disjoint real sets at the model's sample counts, mean ± std over
independent draws, cached in memory and on disk (a corrupt cache file is rewritten)."""

import json

import numpy as np
import pytest
import torch

from fewlabels.data.images import ImageData
from fewlabels.data.toy2d import make_points
from fewlabels.metrics import floors
from fewlabels.metrics.distances import emd
from fewlabels.metrics.samples import SampleMetrics

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test starts with an empty cache folder of its own and nothing in memory."""
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("FEWLABELS_CACHE", str(tmp_path / "cache"))
    floors.clear_memory()
    yield tmp_path / "cache"
    floors.clear_memory()


def gaussian_file(path, n=3000):
    np.save(path, np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32))
    return str(path)


def test_the_floor_of_a_users_point_file_is_the_emd_of_disjoint_real_sets(tmp_path):
    path = gaussian_file(tmp_path / "pts.npy")
    floor = SampleMetrics(make_points("file", path), False, 500, 500, CPU).floor()
    # Reference: two disjoint random halves of the file, 500 points each, over 10 draws.
    pts = np.load(path)
    rng = np.random.default_rng(1)
    halves = [np.split(pts[rng.permutation(len(pts))[:1000]], 2) for _ in range(10)]
    reference = np.mean([emd(a, b) for a, b in halves])
    assert floor["real_emd"] > 0
    assert floor["real_emd"] == pytest.approx(reference, rel=0.25), (floor, reference)


def test_point_floors_are_mean_and_std_over_at_least_ten_draws():
    floor = SampleMetrics(make_points("grid25"), False, 500, 200, CPU).floor()
    assert floor["real_draws"] >= 10
    for key in ("real_emd", "real_hq_percent", "real_reverse_kl", "real_modes"):
        assert f"{key}_std" in floor
    assert floor["real_emd_std"] > 0 and floor["real_hq_percent_std"] > 0
    assert 0.2 < floor["real_emd"] < 0.8 and floor["real_hq_percent"] > 97


def test_a_floor_is_computed_once_and_then_read_from_disk(own_cache, monkeypatch):
    first = SampleMetrics(make_points("ring8"), False, 300, 100, CPU).floor()
    assert len(list((own_cache / "floors").glob("*.json"))) == 1
    floors.clear_memory()  # a new process: only the disk remembers

    def refuse(self):
        raise AssertionError("the floor was recomputed instead of read from the cache")

    monkeypatch.setattr(SampleMetrics, "_point_floor", refuse)
    assert SampleMetrics(make_points("ring8"), False, 300, 100, CPU).floor() == first


def test_the_cache_key_holds_the_protocol():
    a = SampleMetrics(make_points("ring8"), False, 300, 100, CPU).floor()
    b = SampleMetrics(make_points("ring8"), False, 300, 150, CPU).floor()
    assert a["real_emd"] != b["real_emd"]


@pytest.mark.parametrize("garbage", ["{not json", '{"identity": {}, "floor": {"emd": "x"}}', "[]", ""])
def test_a_corrupt_cache_file_is_ignored_and_rewritten(own_cache, garbage):
    first = SampleMetrics(make_points("ring8"), False, 300, 100, CPU).floor()
    (path,) = (own_cache / "floors").glob("*.json")
    path.write_text(garbage)
    floors.clear_memory()
    assert SampleMetrics(make_points("ring8"), False, 300, 100, CPU).floor() == first
    assert json.loads(path.read_text())["floor"]["emd"] == first["real_emd"]


def test_the_cache_lives_under_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("FEWLABELS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert floors.cache_dir() == tmp_path / "xdg" / "fewlabels"
    SampleMetrics(make_points("ring8"), False, 300, 100, CPU).floor()
    assert list((tmp_path / "xdg" / "fewlabels" / "floors").glob("*.json"))


def test_an_unwritable_cache_folder_costs_time_not_the_run(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file where the cache folder should be")
    monkeypatch.setenv("FEWLABELS_CACHE", str(tmp_path / "file"))
    assert SampleMetrics(make_points("ring8"), False, 300, 100, CPU).floor()["real_emd"] > 0


def two_class_images(n=300):
    """8x8 images: class 0 bright on the left, class 1 on the right, plus noise."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    x = rng.normal(-0.5, 0.2, (n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, :, 4 * c:4 * c + 4] += 1.0
    x = np.clip(x, -1, 1)
    return ImageData(x[:240], x[240:], y[:240], y[240:], name="two_class")


def test_image_floors_are_mean_and_std_over_draws_of_disjoint_training_and_held_out_images():
    metrics = SampleMetrics(two_class_images(), True, 40, 0, CPU)
    floor = metrics.floor()
    assert floor["real_draws"] >= 10
    assert floor["real_fd"] > 0 and floor["real_fd_std"] > 0 and "real_confident_percent_std" in floor
    scored = metrics.score(metrics.data.holdout(40))
    assert scored["real_fd"] == floor["real_fd"] and f"{floor['real_draws']} draws" in scored["samples_vs_real"]


def test_each_image_floor_draw_compares_its_own_training_and_held_out_images():
    from fewlabels.metrics.samples import draw_seed

    metrics = SampleMetrics(two_class_images(), True, 40, 0, CPU)
    floor, data, features = metrics.floor(), metrics.data, metrics.features
    by_hand = []
    for k in range(floor["real_draws"]):
        a, b = data.disjoint_real_indices(40, 40, draw_seed(k))
        by_hand.append(features.scores(data.train[a], data.held[b])["fd"])
    assert floor["real_fd"] == pytest.approx(np.mean(by_hand), rel=1e-6)
    assert floor["real_fd_std"] == pytest.approx(np.std(by_hand), rel=1e-6)
