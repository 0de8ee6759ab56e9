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


def _rank(rank, world, port, cfg_path, out, averaging):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from fewlabels import checkpoint, config, distributed
    from fewlabels.loop import build_experiment
    from fewlabels.rl.go import alphazero

    if not averaging:
        alphazero.average_gradients = lambda params: None
    distributed.init(torch.device("cpu"))
    cfg = config.load(cfg_path)
    checkpoint.seed_everything(cfg.seed)
    exp = build_experiment(cfg, torch.device("cpu"))
    x, pi, z = fixed_batch(exp, 16)
    half = 16 // world
    for _ in range(3):  # three Adam steps on this rank's half
        exp.learn(x[rank * half:(rank + 1) * half], pi[rank * half:(rank + 1) * half],
                  z[rank * half:(rank + 1) * half])
    # Batch norm over slices of unequal size (5 and 11 rows): every row normalised as in one batch
    bn = distributed.BatchNorm2d(3).train()
    rows = torch.randn(16, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 + 1
    cut = (0, 5, 16) if world == 2 else (0, 16)
    bn_out = bn(rows[cut[rank]:cut[rank + 1]]).detach()
    torch.save({"net": exp.net.state_dict(), "bn_out": bn_out, "bn_var": bn.running_var.clone()},
               os.path.join(out, f"rank{rank}.pt"))
    distributed.finish()


def learn_on(world: int, tmp_path, averaging: bool = True) -> list[dict]:
    import torch.multiprocessing as mp

    out = tmp_path / f"w{world}{'' if averaging else '_no_avg'}"
    out.mkdir()
    cfg = go_config(tmp_path)
    mp.start_processes(_rank, args=(world, free_port(), str(cfg), str(out), averaging), nprocs=world,
                       start_method="spawn")
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]


@pytest.mark.slow(seconds=15)
def test_two_processes_take_the_alphazero_step_one_process_takes_on_the_whole_batch(tmp_path):
    """Three AdamW steps on 16 positions, 8 per rank, through a network with batch norm: both
    ranks end with the weights (and batch norm's running statistics) of one process stepping on
    all 16. Without the gradient averaging they do not. Batch norm also holds with slices of
    unequal size (the ranks' buffers fill at different rates), which it did not before."""
    (one,) = learn_on(1, tmp_path)
    two = learn_on(2, tmp_path)
    for key, value in one["net"].items():
        for r in (0, 1):
            assert torch.allclose(value.float(), two[r]["net"][key].float(), atol=1e-5, rtol=1e-4), (r, key)
    both = torch.cat([two[0]["bn_out"], two[1]["bn_out"]])
    assert torch.allclose(both, one["bn_out"], atol=1e-5)
    assert torch.allclose(two[0]["bn_var"], one["bn_var"], atol=1e-6)
    apart = learn_on(2, tmp_path, averaging=False)
    assert not all(torch.allclose(v.float(), apart[0]["net"][k].float(), atol=1e-4) for k, v in one["net"].items())


@pytest.mark.slow(seconds=60)
@pytest.mark.parametrize("algo", ["alphazero", "ppo"])
def test_go_self_play_under_torchrun_trains_and_resumes_as_one_process_and_back(tmp_path, algo):
    """Two processes each play half of every iteration's games (their own streams: the two
    halves are different games), rank 0 writes one run, and the checkpoint resumes across
    process counts in both directions."""
    cfg = go_config(tmp_path, algo=algo, ppo={"parallel_games": 4, "pool_every": 4, "minibatch_size": 32},
                    train={"steps": 8, "checkpoint_every": 4})
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
