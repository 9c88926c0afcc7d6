"""Example widthwise pruning plug-ins: each is a function of one widthwise.Layer returning a score per
intermediate neuron (higher is kept). pyproject.toml's entry points register them by name."""

import torch

import widthwise


def gate_up_down(layer: widthwise.Layer) -> torch.Tensor:
    """Weights only: the product of the L2 norms of the neuron's gate row, up row and down column."""
    return layer.gate.norm(dim=1) * layer.up.norm(dim=1) * layer.down.norm(dim=0)


@widthwise.pruner(calibration="intermediate")
def wanda_mlp(layer: widthwise.Layer) -> torch.Tensor:
    """Wanda-style: the activation's L2 norm over the calibration tokens times its down_proj column's L1.

    Wanda scores a weight |W_ji| * ||X_i||; summed over the outputs j that neuron i feeds, that is
    ||X_i|| * sum_j |down_ji|, with X the intermediate activation act(gate x) * (up x)."""
    return layer.intermediate.norm(dim=0) * layer.down.abs().sum(dim=0)
