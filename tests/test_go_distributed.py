"""Go self-play under torchrun (issue 16): each rank plays its share of the games with its own
random streams and learns from its own positions; gradients are averaged and batch norm takes the
global batch's statistics, so a gradient step of two gloo processes on two halves of a batch is
the step one process takes on the whole batch, and is not without the averaging."""

import os

import numpy as np
import pytest
import torch

from conftest import final_state, one_and_two_processes, resume_across_process_counts
from test_go import go_config
from test_rl_distributed import free_port


def fixed_batch(exp, n: int):
    """n positions (random 0/1 planes), search policies and results, the same on every rank."""
    g = torch.Generator().manual_seed(0)
    shape = (n, 2 * exp.history + 1, exp.rules.size, exp.rules.size)
    x = (torch.rand(shape, generator=g) < 0.3).float()
    pi = torch.softmax(torch.randn(n, exp.rules.actions, generator=g) * 2, 1)
    z = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1
    return x, pi, z


def ppo_batch(exp, n: int) -> dict:
    """n learner moves (random planes, legal masks, legal actions), the old log-probabilities and
    values of the (identical) initial network, random advantages: the same on every rank."""
    from fewlabels.rl.go.net import masked_log_softmax

    g = torch.Generator().manual_seed(2)
    x, _, _ = fixed_batch(exp, n)
    masks = torch.rand(n, exp.rules.actions, generator=g) < 0.6
    masks[:, -1] = True  # pass is always legal
    actions = torch.multinomial(masks.float(), 1, generator=g).squeeze(1)
    with torch.no_grad():
        logits, values = exp.net(x)
        logp = masked_log_softmax(logits, masks).gather(1, actions[:, None]).squeeze(1)
    adv = torch.randn(n, generator=g) * 2 + 0.5
    return {"obs": x, "masks": masks, "actions": actions, "logp": logp, "values": values, "advantages": adv,
            "returns": values + adv}


CUT = {1: (0, 16), 2: (0, 5, 16)}  # unequal slices: rank 0 has 5 rows, rank 1 has 11


def _rank(rank, world, port, cfg_paths, out, averaging):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from fewlabels import checkpoint, config, distributed
    from fewlabels.loop import build_experiment
    from fewlabels.rl.go import alphazero, ppo

    if not averaging:
        alphazero.average_gradients = ppo.average_gradients = lambda params: None
    distributed.init(torch.device("cpu"))
    a, b = CUT[world][rank], CUT[world][rank + 1]
    saved = {}
    for algo, path in cfg_paths.items():
        cfg = config.load(path)
        checkpoint.seed_everything(cfg.seed)
        exp = build_experiment(cfg, torch.device("cpu"))
        if algo == "alphazero":
            x, pi, z = fixed_batch(exp, 16)
            for _ in range(3):  # three AdamW steps on this rank's rows, weighed by its share
                exp.learn(x[a:b], pi[a:b], z[a:b], weight=world * (b - a) / 16)
            obs, *_ = exp.self_play(1)  # one game of this rank's own
            saved["game"] = torch.from_numpy(obs)
        else:  # one PPO update (3 epochs, one minibatch) on this rank's moves
            mine = {k: v[a:b] for k, v in ppo_batch(exp, 16).items()}
            exp.update(mine)
        saved.update({f"{algo}.{k}": v for k, v in exp.net.state_dict().items()})
    # Batch norm alone over the same unequal slices: every row normalised as in one batch
    bn = distributed.BatchNorm2d(3).train()
    rows = torch.randn(16, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 + 1
    saved.update(bn_out=bn(rows[a:b]).detach(), bn_var=bn.running_var.clone())
    torch.save(saved, os.path.join(out, f"rank{rank}.pt"))
    distributed.finish()


def learn_on(world: int, tmp_path, averaging: bool = True) -> list[dict]:
    import torch.multiprocessing as mp

    out = tmp_path / f"w{world}{'' if averaging else '_no_avg'}"
    out.mkdir()
    (tmp_path / "az").mkdir(exist_ok=True)
    (tmp_path / "ppo").mkdir(exist_ok=True)
    cfgs = {"alphazero": str(go_config(tmp_path / "az")),
            "ppo": str(go_config(tmp_path / "ppo", algo="ppo", ppo={"minibatch_size": 256, "epochs": 3}))}
    mp.start_processes(_rank, args=(world, free_port(), cfgs, str(out), averaging), nprocs=world,
                       start_method="spawn")
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]


@pytest.mark.slow(seconds=20)
def test_two_processes_take_the_step_one_process_takes_on_all_rows(tmp_path):
    """Rows split 5 / 11 between two ranks. AlphaZero: three AdamW steps through a network with
    batch norm; PPO: three epochs of one minibatch, advantages normalised, gradient norm clipped.
    Both ranks end with the weights (and batch norm's statistics) of one process stepping on all
    16 rows; without the gradient averaging they do not. The ranks' own self-play games differ."""
    (one,) = learn_on(1, tmp_path)
    two = learn_on(2, tmp_path)
    weights = [k for k in one if "." in k and k.split(".")[0] in ("alphazero", "ppo")]
    assert any(k.startswith("ppo.") for k in weights) and any("running_var" in k for k in weights)
    for key in weights:
        for r in (0, 1):
            assert torch.allclose(one[key].float(), two[r][key].float(), atol=1e-5, rtol=1e-4), (r, key)
    both = torch.cat([two[0]["bn_out"], two[1]["bn_out"]])
    assert torch.allclose(both, one["bn_out"], atol=1e-5)
    assert torch.allclose(two[0]["bn_var"], one["bn_var"], atol=1e-6)
    g0, g1 = two[0]["game"], two[1]["game"]
    assert g0.shape != g1.shape or not torch.equal(g0, g1)  # each rank plays its own games
    apart = learn_on(2, tmp_path, averaging=False)
    for algo in ("alphazero", "ppo"):
        assert not all(torch.allclose(one[k].float(), apart[0][k].float(), atol=1e-4)
                       for k in weights if k.startswith(algo)), algo


@pytest.mark.slow(seconds=60)
@pytest.mark.parametrize("algo", ["alphazero", "ppo"])
def test_go_self_play_under_torchrun_trains_and_resumes_as_one_process_and_back(tmp_path, algo):
    """Two processes each play half of every iteration's games (their own streams: the two
    halves are different games), rank 0 writes one run, and the checkpoint resumes across
    process counts in both directions."""
    cfg = go_config(tmp_path, algo=algo, ppo={"parallel_games": 4, "pool_every": 4, "minibatch_size": 32},
                    alphazero={"buffer_positions": 60}, train={"steps": 8, "checkpoint_every": 4})
    single, double = one_and_two_processes(cfg, tmp_path)
    (one, step_one), (two, step_two) = final_state(single), final_state(double)
    assert step_one == step_two == 8 and one["games"] == two["games"] == 8  # games count every rank's
    # Different games were played: the two runs' weights part ways
    assert not all(torch.equal(v, two["net"][k]) for k, v in one["net"].items())
    if algo == "alphazero":  # rank 0's buffer holds its own half of the positions
        assert 0 < len(two["buffer"]["z"]) < len(one["buffer"]["z"])
    a, b = resume_across_process_counts(cfg, single, double, steps=12)
    assert a["games"] == b["games"] == 12
    for state in (a, b):
        assert all(np.isfinite(v.float().numpy()).all() for v in state["net"].values())
        if algo == "alphazero":  # the buffers wrapped (60 positions) and were dealt out on resume:
            pi = np.asarray(state["buffer"]["pi"])  # every row kept is a position, none left unwritten
            assert len(pi) > 0 and np.allclose(pi.sum(1), 1, atol=1e-5)


def test_ranks_that_share_a_gpu_join_by_gloo_and_ranks_with_a_gpu_each_by_nccl():
    """NCCL refuses two ranks on one device; Go self-play's ranks share one GPU (gpu_suite --nproc)."""
    from fewlabels.distributed import backend

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert [backend(cuda, 1, 1), backend(cuda, 8, 8), backend(cuda, 4, 8)] == ["nccl"] * 3
    assert [backend(cuda, 16, 1), backend(cuda, 2, 1), backend(cpu, 2, 0), backend(cpu, 2, 4)] == ["gloo"] * 4
