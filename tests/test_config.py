import pytest

from fewlabels import config
from fewlabels.errors import UserError


def build(data, overrides=()):
    return config.from_dict(config.apply_overrides(data, list(overrides)), "x.yaml")


def test_defaults_fill_what_the_file_leaves_out():
    cfg = build({"family": "gan", "train": {"steps": 5}})
    assert cfg.train.steps == 5 and cfg.train.batch_size == 256 and cfg.loss.name == "nonsaturating"


def test_set_overrides_nested_keys_and_parses_scientific_floats():
    cfg = build({"family": "gan"}, ["optim.lr_g=1e-3", "train.steps=7", "loss.name=hinge", "optim.betas=[0.0, 0.9]"])
    assert cfg.optim.lr_g == 1e-3 and cfg.train.steps == 7 and cfg.loss.name == "hinge"
    assert cfg.optim.betas == (0.0, 0.9)


def test_unknown_key_names_the_file_and_suggests_the_closest():
    with pytest.raises(UserError, match=r"x.yaml: unknown key 'train.stpes'; did you mean 'steps'"):
        build({"family": "gan", "train": {"stpes": 5}})


def test_wrong_type_names_key_value_and_expectation():
    with pytest.raises(UserError, match=r"train.steps is 'many'; expected an integer"):
        build({"family": "gan", "train": {"steps": "many"}})


def test_out_of_range_value_says_what_is_valid():
    with pytest.raises(UserError, match=r"train.ema is 1.5; valid values are >= 0 and < 1"):
        build({"family": "gan", "train": {"ema": 1.5}})


def test_choice_lists_the_valid_names():
    with pytest.raises(UserError, match=r"loss.name is 'wgan'; valid: 'minimax', 'nonsaturating'"):
        build({"family": "gan", "loss": {"name": "wgan"}})


def test_wasserstein_without_a_lipschitz_constraint_is_refused():
    with pytest.raises(UserError, match="Lipschitz"):
        build({"family": "gan", "loss": {"name": "wasserstein"}})


def test_unknown_family():
    with pytest.raises(UserError, match="family 'gann' is unknown"):
        build({"family": "gann"})


def test_dump_and_reload_round_trips():
    cfg = build({"family": "gan", "optim": {"betas": [0.0, 0.99]}})
    again = config.from_dict(__import__("yaml").safe_load(config.dump(cfg)))
    assert again == cfg


def test_every_shipped_config_loads():
    from pathlib import Path

    files = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
    assert files
    for f in files:
        config.load(f)
