"""Deep RL: NEXT_STEP autoreset bookkeeping, GAE's bootstrap on truncation, learning on
CartPole (PPO, A2C, REINFORCE, DQN), the Atari and MuJoCo pipelines on CPU, resume, evaluation
and bad inputs."""

import json
import subprocess

import numpy as np
import pytest
import torch
import yaml

from conftest import PYTHON, ROOT, cli_env, train_cmd
from fewlabels import checkpoint
from fewlabels import config as configlib
from fewlabels.cli import main
from fewlabels.errors import UserError
from fewlabels.loop import open_run, train
from fewlabels.rl.deep.nets import MLP, _Tanh
from fewlabels.rl.deep.pg import gae
from fewlabels.rl.deep.vector import EpisodeTracker, import_extra
from fewlabels.run import RunDir


def config_file(tmp_path, base: str, name: str = "c.yaml", **sections) -> str:
    cfg = yaml.safe_load((ROOT / "configs" / "rl" / f"{base}.yaml").read_text())
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def run(tmp_path, base: str, out: str = "run", **sections) -> tuple[dict, list[dict]]:
    cfg = configlib.load(config_file(tmp_path, base, f"{out}.yaml", **sections))
    summary = train(cfg, str(tmp_path / out), device="cpu")
    rows = [json.loads(x) for x in (tmp_path / out / "metrics.jsonl").read_text().splitlines()]
    return summary, rows


def evals(rows):
    return [r["mean_return"] for r in rows if "mean_return" in r]


# ---- plumbing ----------------------------------------------------------------------------
def test_gae_bootstraps_a_truncated_episode_but_not_a_terminated_one():
    rewards = np.ones((2, 2))
    values = np.array([[0.0, 0.0], [5.0, 5.0]])  # V(s_1) = 5 is the last observation of episode 1
    last = np.zeros(2)
    done = np.array([[1.0, 1.0], [0.0, 0.0]])
    terminated = np.array([[1.0, 0.0], [0.0, 0.0]])  # env 0 failed; env 1 hit its time limit
    adv = gae(rewards, values, last, terminated, done, gamma=0.9, lam=1.0)
    assert adv[0, 0].item() == pytest.approx(1.0)  # r, no bootstrap past a terminal state
    assert adv[0, 1].item() == pytest.approx(1.0 + 0.9 * 5.0)  # r + γ V(s_last) on truncation


def test_gae_with_lambda_one_is_the_discounted_reward_to_go():
    rewards = np.array([[1.0], [2.0], [3.0]])
    zeros = np.zeros((3, 1))
    adv = gae(rewards, zeros, np.zeros(1), zeros, zeros, gamma=0.5, lam=1.0)
    assert adv.flatten().tolist() == pytest.approx([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])


def test_episode_tracker_counts_returns_and_masks_next_step_reset_steps():
    tracker = EpisodeTracker(2)
    f, t = np.array([False, False]), np.array([True, False])
    assert tracker.step(np.array([1.0, 1.0]), f, f).all()
    assert tracker.step(np.array([1.0, 1.0]), t, f).all()  # env 0 ends with return 2
    valid = tracker.step(np.array([0.0, 1.0]), f, np.array([False, True]))  # env 0 resets; env 1 truncated
    assert valid.tolist() == [False, True]
    assert tracker.pop() == [(2.0, 2), (3.0, 3)]


def test_fast_tanh_matches_torch_tanh_in_value_and_gradient():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_Tanh.apply, (x,))
    y = torch.linspace(-20, 20, 4001)
    assert torch.allclose(_Tanh.apply(y), torch.tanh(y), atol=3e-7)
    net = MLP([4, 64, 64, 2], "tanh")
    assert net(torch.randn(512, 4)).shape == (512, 2)


class CountingEnv:
    """Episodes of exactly LENGTH steps: the observation is the time step t, the reward at t is
    t + 1, the action does not matter. So G_t is known in closed form."""

    LENGTH = 7
    ID = "fewlabels-test/Counting-v0"


def counting_env():
    import gymnasium as gym

    class Env(gym.Env):
        observation_space = gym.spaces.Box(0.0, CountingEnv.LENGTH, (1,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.array([0.0], np.float32), {}

        def step(self, action):
            reward, self.t = float(self.t + 1), self.t + 1
            return np.array([self.t], np.float32), reward, self.t == CountingEnv.LENGTH, False, {}

    return Env()


@pytest.mark.parametrize("baseline", [False, True])
def test_reinforce_uses_the_reward_to_go_to_the_end_of_the_episode_across_rollouts(tmp_path, baseline):
    import gymnasium as gym

    from fewlabels.rl.deep.pg import PGExperiment

    if CountingEnv.ID not in gym.registry:
        gym.register(CountingEnv.ID, entry_point=counting_env)
    gamma, n_steps, L = 0.9, 3, CountingEnv.LENGTH  # episodes of 7 steps, rollouts of 3
    path = tmp_path / "reinforce.yaml"
    path.write_text(yaml.safe_dump({
        "family": "pg", "env": {"id": CountingEnv.ID, "num_envs": 2},
        "agent": {"algo": "reinforce", "baseline": baseline, "gamma": gamma, "n_steps": n_steps,
                  "normalize_advantage": False, "hidden": [8]},
        "train": {"steps": 1000}}))
    exp = PGExperiment(configlib.load(str(path)), torch.device("cpu"))
    batches = []
    exp.update = lambda batch, clip: batches.append(batch) or {}
    for call in range(1, 11):
        exp.train_step(call * exp.steps_per_call)
    assert exp.env_steps == 10 * n_steps * 2  # a train_step is still n_steps vector steps
    # by hand: G_t = sum over k = t..L-1 of gamma^(k-t) (k + 1)
    by_hand = [sum(gamma ** (k - t) * (k + 1) for k in range(t, L)) for t in range(L)]
    assert len(batches) >= 3
    for batch in batches:
        t = batch["obs"][:, 0].long()
        assert torch.allclose(batch["returns"], torch.tensor(by_hand, dtype=torch.float32)[t])
        expected_adv = batch["returns"] - batch["values"] if baseline else batch["returns"]
        assert torch.allclose(batch["advantages"], expected_adv)
    first = batches[0]["obs"][:, 0].long()
    assert sorted(first.tolist()) == sorted(list(range(L)) * 2)  # two whole episodes, each step once


# ---- learning on CartPole --------------------------------------------------------------------
def test_ppo_solves_cartpole(tmp_path):
    summary, rows = run(tmp_path, "cartpole_ppo", train={"steps": 60_000}, eval={"gif": False})
    assert max(evals(rows)) >= 475
    assert summary["metrics"]["mean_return"] >= 475
    rows_with_time = [r for r in rows if "mean_return" in r]
    assert all(0 < r["eval_seconds"] < r["wall_seconds"] for r in rows_with_time)
    assert [r["step"] for r in rows_with_time][:2] == [2048, 4096]  # environment steps


def test_a2c_learns_cartpole(tmp_path):
    _, rows = run(tmp_path, "cartpole_a2c", train={"steps": 20_000}, eval={"gif": False})
    assert max(evals(rows)) >= 200  # a random policy scores about 22


def test_reinforce_with_baseline_learns_cartpole(tmp_path):
    _, rows = run(tmp_path, "cartpole_reinforce", train={"steps": 40_000}, eval={"gif": False})
    assert max(evals(rows)) >= 80  # a random policy scores about 22; it solves by about 150k steps


def test_dqn_learns_cartpole(tmp_path):
    summary, rows = run(tmp_path, "cartpole_dqn", train={"steps": 12_000}, eval={"gif": False})
    assert max(evals(rows)) >= 100
    assert rows[-2]["q_mean"] > 10  # Q estimates grew from zero towards the discounted return


# ---- Atari and MuJoCo pipelines -----------------------------------------------------------------
def test_pong_ppo_pipeline_feeds_stacked_uint8_frames_and_logs_raw_game_scores(tmp_path, monkeypatch):
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from fewlabels.rl.deep import nets
    from fewlabels.rl.deep.vector import make_single

    seen = []  # every batch of observations the network was given, while acting and while learning
    forward = nets.NatureCNN.forward
    monkeypatch.setattr(nets.NatureCNN, "forward", lambda self, x: seen.append(x.clone()) or forward(self, x))
    summary, rows = run(tmp_path, "pong_ppo", out="pong",
                        env={"num_envs": 2, "vectorization": "sync"},
                        agent={"n_steps": 64, "minibatch_size": 64, "epochs": 1},
                        train={"steps": 1024, "eval_every": 0, "log_every": 128},
                        eval={"episodes": 1, "gif_frames": 20})
    assert summary["status"] == "completed" and summary["steps"] == 1024  # 4,096 frames (frame skip 4)
    assert all(x.dtype == torch.uint8 and x.shape[1:] == (4, 84, 84) for x in seen)
    acting = [x[0] for x in seen[:40] if x.shape[0] == 2]  # sub-environment 0, first steps of the first rollout
    assert len(acting) == 40
    # FrameStackObservation: each stack drops its oldest frame and appends the newest one ...
    assert all(torch.equal(b[:3], a[1:]) for a, b in zip(acting, acting[1:]))
    assert any(not torch.equal(x[0], x[3]) for x in acting)  # ... and the four frames are not copies
    assert sum(x.shape[0] == 64 for x in seen) == 1024 // 64  # the update saw every rollout step once

    # The evaluation score is the raw game score: replay the same greedy episode by hand.
    _, _, exp = open_run(str(tmp_path / "pong"), "cpu")
    env = make_single(exp.cfg.env)
    obs, _ = env.reset(seed=exp.cfg.eval.seed)
    raw = []
    while True:
        obs, reward, terminated, truncated, _ = env.step(exp.act(np.asarray(obs)[None], True)[0])
        raw.append(reward)
        if terminated or truncated:
            break
    env.close()
    assert max(raw.count(1.0), raw.count(-1.0)) == 21  # a whole game: one side reached 21 points
    assert summary["metrics"]["mean_return"] == sum(raw)  # same weights, same seed, same episode
    assert (tmp_path / "pong" / "samples" / "episode.gif").stat().st_size > 1000


def test_reward_clip_changes_what_is_learned_but_not_the_logged_return(tmp_path):
    import gymnasium as gym

    from fewlabels.rl.deep.pg import PGExperiment

    if CountingEnv.ID not in gym.registry:
        gym.register(CountingEnv.ID, entry_point=counting_env)
    path = tmp_path / "clip.yaml"
    path.write_text(yaml.safe_dump({"family": "pg", "env": {"id": CountingEnv.ID, "num_envs": 1, "reward_clip": 1.0},
                                    "agent": {"algo": "ppo", "hidden": [8]}}))
    exp = PGExperiment(configlib.load(str(path)), torch.device("cpu"))
    learned = [exp.step_envs(np.zeros(1, np.int64))[1][0] for _ in range(CountingEnv.LENGTH)]
    assert learned == [1.0] * CountingEnv.LENGTH  # raw rewards 1..7, clipped to 1
    assert exp.episode_logs()["ep_return"] == sum(range(1, CountingEnv.LENGTH + 1)) == 28


def test_pong_dqn_pipeline_keeps_uint8_frames_in_replay(tmp_path):
    pytest.importorskip("ale_py")
    cfg = configlib.load(config_file(tmp_path, "pong_dqn", agent={"buffer_size": 600, "learning_starts": 256,
                                                                  "batch_size": 8},
                                     train={"steps": 400, "eval_every": 0, "log_every": 100},
                                     eval={"episodes": 1, "gif": False}))
    train(cfg, str(tmp_path / "dqn"), device="cpu")
    _, _, exp = open_run(str(tmp_path / "dqn"), "cpu")
    assert exp.buffer.obs.dtype == torch.uint8 and exp.buffer.obs.shape[1:] == (4, 84, 84)
    assert exp.buffer.size == 0  # save_replay: false; the absence is documented in pong_dqn.yaml
    assert exp.buffer.nbytes == 600 * 2 * 4 * 84 * 84 + 600 * (8 + 4 + 4)


def test_hopper_ppo_runs_and_its_normalisation_is_saved_and_used_at_evaluation(tmp_path):
    pytest.importorskip("mujoco")
    summary, _ = run(tmp_path, "hopper_ppo", out="hop", agent={"n_steps": 512},
                     train={"steps": 3072, "eval_every": 0, "log_every": 512}, eval={"episodes": 2, "gif": False})
    assert summary["status"] == "completed" and np.isfinite(summary["metrics"]["mean_return"])
    state, _ = checkpoint.load(RunDir(tmp_path / "hop").latest_checkpoint())
    mean = state["experiment"]["obs_norm"]["mean"]
    assert mean.shape == (11,) and mean.abs().sum() > 0
    _, _, exp = open_run(str(tmp_path / "hop"), "cpu")
    assert torch.allclose(torch.as_tensor(exp.obs_norm.rms.mean), mean.double())
    again = exp.evaluate()["mean_return"]
    assert again == pytest.approx(summary["metrics"]["mean_return"], rel=1e-5)  # frozen statistics, same seed


# ---- resume, evaluate, bad input -------------------------------------------------------------
def test_resume_continues_the_run_with_weights_and_replay_buffer(tmp_path, capsys):
    path = config_file(tmp_path, "cartpole_dqn", train={"steps": 2048, "eval_every": 1024, "log_every": 512,
                                                        "checkpoint_every": 1024}, eval={"gif": False})
    out = str(tmp_path / "run")
    assert main(["train", path, "--out", out, "--device", "cpu"]) == 0
    state, info = checkpoint.load(RunDir(out).latest_checkpoint())
    saved = state["experiment"]["nets"]["replay"]["size"]
    assert 1800 < saved < 2048  # every transition but the NEXT_STEP reset steps
    assert main(["train", path, "--out", out, "--device", "cpu", "--set", "train.steps=4096"]) == 0
    assert "resuming" in capsys.readouterr().err
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "mean_return" in r]
    assert steps == sorted(steps) and steps[-1] == 4096 and len(steps) == len(set(steps))
    walls = [r["wall_seconds"] for r in rows]
    assert walls == sorted(walls)  # the clock continues across the resume
    _, _, exp = open_run(out, "cpu")
    assert exp.env_steps == 4096 and saved + 1800 < exp.buffer.size < 4096  # the saved buffer, then more


def test_evaluate_cli_gives_mean_return_over_n_episodes(tmp_path, capsys):
    path = config_file(tmp_path, "cartpole_ppo", train={"steps": 512, "eval_every": 0}, eval={"gif": False})
    out = str(tmp_path / "run")
    assert main(["train", path, "--out", out, "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", out, "--episodes", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"mean_return", "std_return", "episodes"} and result["episodes"] == 3


def cli(args, tmp_path, prelude="pass"):
    code = f"import sys; {prelude}; from fewlabels.cli import main; sys.exit(main({args!r}))"
    return subprocess.run([PYTHON, "-c", code], env=cli_env(), capture_output=True, text=True, cwd=tmp_path)


@pytest.mark.parametrize("base, sections, phrase", [
    ("cartpole_ppo", {"env": {"id": "CartPol-v1"}}, "'CartPol-v1' cannot be made"),
    ("cartpole_dqn", {"env": {"id": "Pendulum-v1"}}, "DQN needs a Discrete action space"),
    ("cartpole_ppo", {"agent": {"algo": "trpo"}}, "agent.algo"),
])
def test_bad_rl_config_is_one_sentence_and_exit_2(tmp_path, base, sections, phrase):
    path = config_file(tmp_path, base, **sections)
    out = tmp_path / "run"
    proc = cli(["train", path, "--out", str(out)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert phrase in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()  # refused before a run directory is made


def test_missing_atari_extra_names_the_extra(tmp_path):
    path = config_file(tmp_path, "pong_ppo")
    proc = cli(["train", path, "--out", str(tmp_path / "run")], tmp_path, prelude="sys.modules['ale_py'] = None")
    assert proc.returncode == 2
    assert "needs the 'atari' extra" in proc.stderr and "pip install -e '.[atari]'" in proc.stderr


def test_import_extra_refuses_a_missing_mujoco(monkeypatch):
    import importlib

    def missing(name, *a, **k):
        raise ModuleNotFoundError(name=name)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(UserError, match="needs the 'mujoco' extra"):
        import_extra("Hopper-v5")


def test_sigterm_mid_run_saves_a_checkpoint_that_resumes(tmp_path):
    path = config_file(tmp_path, "cartpole_ppo", train={"steps": 200_000, "eval_every": 0, "log_every": 256,
                                                        "checkpoint_every": 100_000}, eval={"gif": False})
    out = tmp_path / "run"
    from conftest import interrupt_mid_run

    stopped = interrupt_mid_run(path, out, log_lines=6)
    assert 0 < stopped < 200_000
    proc = subprocess.run(train_cmd(path, out) + ["--set", f"train.steps={stopped + 512}"], env=cli_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"from step {stopped}" in proc.stderr


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("algo, clip_value, activation", [("ppo", None, "tanh"), ("ppo", 0.2, "relu"),
                                                          ("a2c", None, "tanh"), ("reinforce", None, "relu")])
def test_hand_written_policy_gradient_equals_autograd(discrete, algo, clip_value, activation):
    from fewlabels.rl.deep import mlp_grad
    from fewlabels.rl.deep.nets import ActorCritic
    from fewlabels.rl.deep.pg import policy_loss, value_loss

    torch.manual_seed(0)
    net = ActorCritic((5,), 3, discrete, [16, 16], activation, log_std_init=-0.5).double()
    n = 40
    obs = torch.randn(n, 5, dtype=torch.float64)
    with torch.no_grad():
        actions = net.sample(obs)[0]
        if not discrete:  # move the policy a little, so some ratios leave the clip range
            actions = actions + 0.3 * torch.randn_like(actions)
    old_logp = net.evaluate_actions(obs, actions)[0].detach() + 0.3 * torch.randn(n, dtype=torch.float64)
    mb = {"obs": obs, "actions": actions, "logp": old_logp, "values": torch.randn(n, dtype=torch.float64),
          "returns": torch.randn(n, dtype=torch.float64)}
    adv = torch.randn(n, dtype=torch.float64)
    coefs = dict(clip=0.2, clip_value=clip_value, ent_coef=0.01, vf_coef=0.7)

    ours = mlp_grad.loss_and_grads(net, mb, adv, algo, coefs["clip"], clip_value, coefs["ent_coef"],
                                   coefs["vf_coef"], use_critic=True)
    ours_grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    logp, entropy, value = net.evaluate_actions(obs, actions)
    pg = policy_loss(algo, logp, old_logp, adv, coefs["clip"])
    vf = value_loss(value, mb["values"], mb["returns"], clip_value)
    (pg - coefs["ent_coef"] * entropy.mean() + coefs["vf_coef"] * vf).backward()
    for (name, p), g in zip(net.named_parameters(), ours_grads):
        assert torch.allclose(g, p.grad, atol=1e-10, rtol=1e-8), name
    assert ours[0].item() == pytest.approx(pg.item()) and ours[1].item() == pytest.approx(vf.item())
    assert ours[2].item() == pytest.approx(entropy.mean().item())


def test_polyak_target_update_moves_tau_of_the_way_and_hard_update_copies(tmp_path):
    cfg = configlib.load(config_file(tmp_path, "cartpole_dqn", agent={"tau": 0.25}))
    from fewlabels.rl.deep.dqn import DQNExperiment

    exp = DQNExperiment(cfg, torch.device("cpu"))
    with torch.no_grad():
        for p in exp.q.parameters():
            p.add_(1.0)
    before = [t.clone() for t in exp.target.parameters()]
    exp.update_target()
    for b, t, q in zip(before, exp.target.parameters(), exp.q.parameters()):
        assert torch.allclose(t, b + 0.25 * (q - b))
    exp.cfg.agent.tau = 1.0
    exp.update_target()
    assert all(torch.equal(t, q) for t, q in zip(exp.target.parameters(), exp.q.parameters()))


def test_async_vector_envs_train_like_sync_ones(tmp_path):
    summary, rows = run(tmp_path, "cartpole_ppo", env={"num_envs": 2, "vectorization": "async"},
                        train={"steps": 1024, "eval_every": 512, "log_every": 256}, eval={"episodes": 2, "gif": False})
    assert summary["status"] == "completed" and len(evals(rows)) == 2


@pytest.mark.parametrize("name", ["cartpole_ppo", "cartpole_dqn"])
def test_benchmark_gives_stable_baselines3_our_hyper_parameters(name, monkeypatch):
    pytest.importorskip("stable_baselines3")
    import importlib.util

    from fewlabels.rl.deep.dqn import DQNExperiment
    from fewlabels.rl.deep.pg import PGExperiment

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("rl_vs_sb3", ROOT / "benchmarks" / "rl_vs_sb3.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = bench.load_config(name, 0, bench.LIKE_FOR_LIKE_OVERRIDES.get(name.split("_")[1], []))
    model, a = bench.sb3_model(cfg, 0), cfg.agent
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert (model.n_envs, model.gamma) == (cfg.env.num_envs, a.gamma)
    assert model.batch_size == (a.batch_size if name == "cartpole_dqn" else a.minibatch_size)
    if name == "cartpole_ppo":
        ours = PGExperiment(cfg, torch.device("cpu"))
        assert (model.n_steps, model.n_epochs, model.gae_lambda) == (a.n_steps, a.epochs, a.gae_lambda)
        assert model.lr_schedule(1.0) == pytest.approx(a.lr) and model.lr_schedule(0.5) == pytest.approx(a.lr / 2)
        assert model.clip_range(0.5) == pytest.approx(a.clip / 2)  # both decay linearly
        assert count(model.policy) == count(ours.net)  # same actor and critic MLPs
        assert isinstance(model.policy.mlp_extractor.policy_net[1], torch.nn.Tanh) and a.activation == "tanh"
    else:
        ours = DQNExperiment(cfg, torch.device("cpu"))
        assert not a.double  # the like-for-like DQN is plain DQN on both sides
        assert (model.train_freq.frequency, model.gradient_steps, model.target_update_interval) == \
            (a.train_freq, a.gradient_steps, a.target_update)
        assert (model.exploration_fraction, model.exploration_final_eps, model.learning_starts) == \
            (a.eps_fraction, a.eps_end, a.learning_starts)
        assert model.lr_schedule(0.5) == pytest.approx(a.lr) and count(model.q_net) == count(ours.q)
