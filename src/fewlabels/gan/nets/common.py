"""What every architecture's batch norms share: the EMA generator's standing statistics."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def batch_norms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def standing_statistics_(net: nn.Module, batches: Iterable[Tensor]) -> None:
    """Replace the running statistics of every batch norm in `net` by its "standing statistics"
    (Brock et al. 2019): over K batches z_1..z_K, each layer's input is normalised by its batch's
    statistics, as in training, and

        running_mean = (1/K) Σ_k mean(x_k),   running_var = (1/K) Σ_k Var_unbiased(x_k)

    per channel, which is nn.BatchNorm2d's cumulative average (momentum=None) in train mode. A batch is
    G's input: z, or a tuple (z, y) for a conditional G. It is
    computed with the layers in eval mode, each fed its batch's statistics by a hook, so that no
    layer takes the torchrun path of fewlabels.distributed.BatchNorm2d: rank 0 alone samples, and a
    collective there would wait for ranks that never come. `net` keeps its train/eval mode."""
    norms = batch_norms(net)
    sums = {m: [torch.zeros_like(m.running_mean), torch.zeros_like(m.running_var)] for m in norms}

    def use_batch_statistics(m: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        x = inputs[0].float()
        dims = [0, *range(2, x.dim())]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        count = x.numel() // x.shape[1]
        sums[m][0] += mean
        sums[m][1] += var * count / (count - 1)  # stored unbiased, as nn.BatchNorm2d does
        m.running_mean.copy_(mean)  # train mode normalises by the biased batch variance
        m.running_var.copy_(var)

    hooks = [m.register_forward_pre_hook(use_batch_statistics) for m in norms]
    was_training, k = net.training, 0
    net.eval()
    try:
        for z in batches:
            net(*z) if isinstance(z, tuple) else net(z)
            k += 1
    finally:
        net.train(was_training)
        for h in hooks:
            h.remove()
    for m in norms:
        m.running_mean.copy_(sums[m][0] / k)
        m.running_var.copy_(sums[m][1] / k)


@torch.no_grad()
def spectral_norm_estimates_(net: nn.Module, iterations: int) -> None:
    """Refine every spectral norm's power-iteration vectors u, v in `net` on its current weights,
    starting from the vectors it holds: σ(W) ≈ uᵀ W v is then W's, not another network's (the EMA
    generator in eval mode never runs the iteration itself, and its vectors are G's)."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import _SpectralNorm

    for module in net.modules():
        if parametrize.is_parametrized(module, "weight"):
            weight = module.parametrizations.weight
            for p in weight:
                if isinstance(p, _SpectralNorm):
                    p._power_method(p._reshape_weight_to_matrix(weight.original), iterations)
