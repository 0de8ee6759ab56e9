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


def test_a_set_value_that_is_not_yaml_is_one_sentence():
    with pytest.raises(UserError, match=r"--set 'train.steps=\[\[': the value is not valid YAML"):
        build({"family": "gan"}, ["train.steps=[["])


def test_a_family_that_is_not_a_name():
    with pytest.raises(UserError, match=r"the key 'family' is \['gan'\]; valid: diffusion"):
        build({"family": ["gan"]})


def test_seeds_are_checked_against_numpys_range():
    with pytest.raises(UserError, match=r"seed is 4294967296; valid values are >= 0 and <= 4294967295"):
        build({"family": "gan", "seed": 2**32})
    assert build({"family": "gan", "seed": 2**32 - 1}).seed == 2**32 - 1


@pytest.mark.parametrize("raw, says", [
    ("family: gan\nname: caf\xe9\n".encode("latin-1"), "not UTF-8 text: byte 0xe9 at position 21"),
    (b"a: " + b"[" * 1000, "nested too deeply"),
    (b"- 1\n- 2\n", "must hold a mapping of keys, not list"),
    (b"family: gan\x00", "not valid YAML"),
])
def test_a_file_that_is_no_config_is_one_sentence(tmp_path, raw, says):
    path = tmp_path / "c.yaml"
    path.write_bytes(raw)
    with pytest.raises(UserError, match=says) as e:
        config.read_yaml(path)
    assert "c.yaml" in str(e.value) and "\n" not in str(e.value)


def test_a_byte_order_mark_is_fine(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xef\xbb\xbffamily: gan\n")
    assert config.read_yaml(path) == {"family": "gan"}
