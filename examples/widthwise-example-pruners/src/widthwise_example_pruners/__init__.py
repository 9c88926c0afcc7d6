"""Example widthwise pruning plug-ins: each is a function of one widthwise.Layer returning a score per
intermediate neuron (higher is kept). pyproject.toml's entry points register them by name."""

import torch

import widthwise


def gate_up_down(layer: widthwise.Layer) -> torch.Tensor:
    """Weights only: the product of the L2 norms of the neuron's gate row, up row and down column."""
    return layer.gate.norm(dim=1) * layer.up.norm(dim=1) * layer.down.norm(dim=0)


@widthwise.pruner(calibration="intermediate")
def wanda_mlp(layer: widthwise.Layer) -> torch.Tensor:
    """Wanda-style: L2 norm of the neuron's activation over the calibration documents times the L1 norm
    of its down_proj column (|W| * ||X|| summed over the outputs it feeds)."""
    return layer.intermediate.norm(dim=0) * layer.down.abs().sum(dim=0)
