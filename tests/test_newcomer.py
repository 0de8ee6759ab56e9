"""A newcomer's first hour (issue 12): errors that name the real source, `plan` on any grid, shipped
configs by name from anywhere, help that ends in examples, and the Python API of the README."""

import json
import re

import numpy as np
import pytest

from conftest import ROOT, write_config
from fewlabels.cli import main


def error_line(capsys, *argv) -> str:
    """Run the CLI; it must fail with exit 2 and one line on stderr, which is returned."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fewlabels: error: ") and "Traceback" not in err, err
    return err


def points_config(tmp_path, csv_text: str):
    (tmp_path / "p.csv").write_text(csv_text)
    return write_config(tmp_path / "c.yaml", data={"name": "file", "path": str(tmp_path / "p.csv")},
                        train={"steps": 2, "snapshot_every": 0}, eval={"samples": 100, "emd_points": 50})


def test_a_csv_with_a_header_row_trains(tmp_path, capsys):
    rows = "\n".join(f"{x:.4f},{y:.4f}" for x, y in np.random.default_rng(0).normal(size=(200, 2)))
    cfg = points_config(tmp_path, "x,y\n" + rows + "\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("text, said", [
    ("1,2\n3,4\n5\n", "row 3 has 1 value but row 1 has 2"),
    ("1,2\n3,oops\n", "row 2, column 2 is 'oops'; expected a finite number"),
    ("", "has no rows of numbers"),
    ("x,y\n", "has no rows of numbers after its header"),
])
def test_bad_csv_files_are_one_sentence_naming_the_row(tmp_path, capsys, text, said):
    cfg = points_config(tmp_path, text)
    err = error_line(capsys, "train", cfg, "--out", tmp_path / "r")
    assert said in err and "p.csv" in err and "usecols" not in err and "Warning" not in err


def test_set_errors_name_the_set_and_yaml_errors_their_line(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml")
    err = error_line(capsys, "train", cfg, "--set", "train.steps=2", "--set", "train.batch_size=big",
                     "--out", tmp_path / "r")
    assert "--set 'train.batch_size=big': train.batch_size is 'big'; expected an integer" in err
    assert "c.yaml" not in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("family: gan\ntrain:\n  steps: 5\n   batch_size: 3\n")
    assert "is not valid YAML at line 4, column" in error_line(capsys, "train", broken)
    err = error_line(capsys, "train", tmp_path)
    assert "is a folder" in err and "does not exist" not in err


def test_plan_follows_any_grid_size_and_prints_the_policy(capsys):
    assert main(["plan", "--rows", "3", "--cols", "3", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)["values"]
    assert values[0][0] == 0 and values[2][2] == 0 and values[0][2] == -2  # opposite corners are terminal
    assert main(["plan", "--rows", "3", "--cols", "4", "--walls", "1,1"]) == 0
    text = capsys.readouterr().out
    values_grid, policy_grid = text.split("\n\n")[:2]
    assert values_grid.splitlines()[2].split()[1] == "#" and values_grid.splitlines()[1].split()[0] == "T"
    assert policy_grid.splitlines()[1].split() == ["T", "←", "←", "↓"]  # (0, 3) is 2 moves from (2, 3)


def test_frozenlake_policy_uses_its_own_action_names(capsys):
    assert main(["plan", "--env", "FrozenLake-v1", "--json"]) == 0
    policy = json.loads(capsys.readouterr().out)["policy"]
    assert policy[3][2] == ["down"] and policy[2][1] == ["down"]  # both lead towards the goal at (3, 3)


def test_shipped_configs_train_by_name_from_the_filesystem_root(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir("/")
    out = tmp_path / "r"
    assert main(["train", "gan/ring8_best", "--out", str(out), "--set", "train.steps=2",
                 "--set", "train.snapshot_every=0", "--set", "eval.samples=100", "--set", "eval.emd_points=50"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
    assert "did you mean 'gan/ring8_best'" in error_line(capsys, "train", "gan/ring8_bset")


def test_configs_lists_every_shipped_config_with_a_description(capsys):
    assert main(["configs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    on_disk = {f"{p.parent.name}/{p.stem}" for p in (ROOT / "src" / "fewlabels" / "configs").glob("*/*.yaml")}
    assert set(listed) == on_disk and len(on_disk) >= 40
    assert all(len(d) > 10 for d in listed.values())


def test_every_command_has_help_with_examples_and_version_works(capsys):
    for command in ("train", "sample", "eval", "evaluate", "plan", "demo", "configs"):
        with pytest.raises(SystemExit):
            main([command, "-h"])
        text = capsys.readouterr().out
        assert "examples:" in text and "docs:" in text, command
        options = re.findall(r"^  (--[a-z-]+)[^\n]*", text, re.M)
        assert options, command
    with pytest.raises(SystemExit):
        main(["-V"])
    assert capsys.readouterr().out.startswith("fewlabels ")


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    code = readme.split("### From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "runs" / "ring8" / "report.html").is_file()


def test_an_rl_run_acts_like_stable_baselines3_predict(tmp_path, capsys):
    import gymnasium as gym

    import fewlabels

    run = fewlabels.train(ROOT / "configs" / "rl" / "cartpole_ppo.yaml", out=tmp_path / "ppo",
                          train={"steps": 256}, eval={"episodes": 1, "gif": False})
    obs, _ = gym.make("CartPole-v1").reset(seed=0)
    action = run.act(obs)
    assert action in (0, 1) and np.shape(action) == ()
    assert run.act(np.stack([obs, obs])).shape == (2,)
    assert set(run.evaluate(episodes=2)) == {"mean_return", "std_return", "episodes"}


def test_the_random_policy_is_solved_exactly_on_a_grid_with_walls(capsys):
    """A wall is a state no move enters: the exact solve must leave it out (it said "the policy
    never ends some episodes" on any grid with a wall)."""
    from fewlabels.rl.planning import dp
    from fewlabels.rl.planning.gridworld import Grid, GridMDP

    mdp = GridMDP(Grid.make(6, 9, "0,8", "1,2;2,2;3,2", -1.0, 0.0), 1.0)
    pi = dp.random_policy(mdp)
    exact = dp.solve_policy_values(mdp, pi)
    iterated = dp.policy_evaluation(mdp, pi, tol=1e-9).values
    assert np.isfinite(exact).all() and np.abs(exact - iterated).max() < 1e-5
    assert main(["plan", "--rows", "6", "--cols", "9", "--terminals", "0,8", "--walls", "1,2;2,2;3,2",
                 "--policy", "random", "--json"]) == 0


def test_small_things_a_newcomer_met(tmp_path, capsys):
    import fewlabels
    from fewlabels.errors import UserError

    listed = fewlabels.configs()
    assert "Miyato et al. 2018" in listed["gan/grid25_hinge_sn"]  # not cut at "et al."
    with pytest.raises(UserError, match="is not a run directory"):
        fewlabels.load(tmp_path / "nope")  # at load, not at the first sample
    cfg = points_config(tmp_path, "x,y\n" + "1,2\n" * 20 + "3,nan\n")
    assert "row 22, column 2 is 'nan'; expected a finite number" in error_line(capsys, "train", cfg, "--out",
                                                                              tmp_path / "r")
