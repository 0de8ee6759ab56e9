"""The policy-gradient loss and its gradient for an MLP actor-critic, written out by hand.

Why: on CartPole-sized networks (4 -> 64 -> 64 -> 2) a PPO minibatch step is a few hundred
microseconds of arithmetic wrapped in about as much autograd bookkeeping (graph building, the
engine's per-node dispatch, module calls). Writing the backward pass out for this one network
shape roughly halves the step; `tests/test_rl_deep.py` checks every gradient against autograd.
Used by `PGExperiment.update` when the observations are vectors; pixels go through autograd.

The loss is the one `pg.py` states:  L = L_π - c_H · mean H[π(·|s)] + c_V · L_V.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fewlabels.rl.deep.nets import HALF_LOG_2PI, MLP, ActorCritic


def _forward(net: MLP, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Output and the layer inputs (x, h_1, ..., h_{L-1}) the backward pass needs."""
    hs = [x]
    last = len(net.weights) - 1
    for i, (w, b) in enumerate(net.weights):
        z = torch.addmm(b, hs[-1], w.t())
        if i == last:
            return z, hs
        hs.append(torch.sigmoid(z.mul_(2.0)).mul_(2.0).sub_(1.0) if net.activation == "tanh" else z.relu_())
    raise AssertionError("an MLP has at least one layer")


def _backward(net: MLP, hs: list[Tensor], g: Tensor) -> None:
    """Accumulate dL/dW, dL/db into .grad given g = dL/d(output)."""
    for i in range(len(net.weights) - 1, -1, -1):
        (w, b), h = net.weights[i], hs[i]
        w.grad = g.t().mm(h)
        b.grad = g.sum(0)
        if i == 0:
            return
        g = g.mm(w)
        # tanh' = 1 - h²; relu' = [h > 0]
        g = g.mul_(1.0 - h * h) if net.activation == "tanh" else g.mul_(h > 0)


@torch.no_grad()
def loss_and_grads(net: ActorCritic, mb: dict[str, Tensor], adv: Tensor, algo: str, clip: float,
                   clip_value: float | None, ent_coef: float, vf_coef: float,
                   use_critic: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Set .grad of every parameter of `net` to dL/dθ for the minibatch; return the detached
    (policy loss, value loss, mean entropy, approx KL)."""
    obs, actions, old_logp = mb["obs"], mb["actions"], mb["logp"]
    n = obs.shape[0]
    out, actor_hs = _forward(net.actor, obs)

    # log π(a|s), the entropy, and their derivatives with respect to the actor's output
    if net.discrete:
        lsm = out.log_softmax(-1)
        p = lsm.exp()
        logp = lsm.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        entropy = -(p * lsm).sum(-1)
    else:
        std = net.log_std.exp()
        u = (actions - out) / std
        logp = (-0.5 * u * u - net.log_std - HALF_LOG_2PI).sum(-1)
        entropy = (0.5 + HALF_LOG_2PI + net.log_std).sum().expand(n)

    # dL_π/dlog π(a|s): PPO's gradient flows unless the ratio is clipped and the clipped term is the min
    if algo == "ppo":
        ratio = (logp - old_logp).exp()
        unclipped, clipped = ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv
        policy_loss = -torch.minimum(unclipped, clipped).mean()
        flows = (clipped >= unclipped) | ((ratio >= 1.0 - clip) & (ratio <= 1.0 + clip))
        g_logp = -(unclipped * flows) / n
    else:
        policy_loss = -(logp * adv).mean()
        g_logp = -adv / n

    if net.discrete:
        onehot = torch.zeros_like(p).scatter_(-1, actions.unsqueeze(-1), 1.0)
        g_out = g_logp.unsqueeze(-1) * (onehot - p)
        if ent_coef:  # d(-c H)/dlogits = c p (log p + H)
            g_out += (ent_coef / n) * p * (lsm + entropy.unsqueeze(-1))
    else:
        g_out = g_logp.unsqueeze(-1) * u / std
        net.log_std.grad = (g_logp.unsqueeze(-1) * (u * u - 1.0)).sum(0) - ent_coef
    _backward(net.actor, actor_hs, g_out)

    if use_critic:
        value, critic_hs = _forward(net.critic, obs)
        value = value.squeeze(-1)
        returns = mb["returns"]
        err = value - returns
        if clip_value is None:
            value_loss = (err * err).mean()
            g_value = (2.0 * vf_coef / n) * err
        else:  # max((V - R)², (V_old + clip(V - V_old, ±c) - R)²)
            delta = value - mb["values"]
            err_c = mb["values"] + delta.clamp(-clip_value, clip_value) - returns
            use_clipped = err_c * err_c > err * err
            value_loss = torch.where(use_clipped, err_c * err_c, err * err).mean()
            g_value = (2.0 * vf_coef / n) * torch.where(use_clipped, err_c * (delta.abs() <= clip_value), err)
        _backward(net.critic, critic_hs, g_value.unsqueeze(-1))
    else:
        value_loss = torch.zeros(())
    kl = (old_logp - logp).mean()
    return policy_loss, value_loss, entropy.mean(), kl
