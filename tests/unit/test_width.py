"""Width planning and neuron selection: pure functions, no model."""

import math

import pytest
import torch

from widthwise.errors import WidthwiseError
from widthwise.prune import (
    PruneSpec,
    align_width,
    select_neurons,
    width_from_pct,
    width_from_ratio,
)
from widthwise.pruners import Layer, get


def score(method, gate, up, g=None):
    """A method's scores of one layer of gate and up rows (down_proj unused by the weight-only ones)."""
    layer = Layer(0, gate, up, torch.zeros(gate.shape[1], gate.shape[0]), g or torch.Generator())
    return get(method).score(layer)


def ppm(gate, up, g=None):
    return score("ppm", gate, up, g)


PAPER_K = {10: 7373, 20: 6554, 30: 5735, 40: 4916, 50: 4096, 60: 3277}


@pytest.mark.parametrize("pct,k", PAPER_K.items())
def test_pct_gives_the_papers_widths(pct, k):
    assert width_from_pct(8192, pct) == k


def test_pct_zero_keeps_everything_and_pct_near_100_keeps_one():
    assert width_from_pct(1536, 0) == 1536
    assert width_from_pct(1536, 99.99) == 1
    assert width_from_pct(1536, 40) == 1536 - math.floor(0.4 * 1536)


@pytest.mark.parametrize("pct", [-1, 100, 150, float("nan"), float("inf")])
def test_pct_outside_range_is_refused(pct):
    with pytest.raises(WidthwiseError, match="--pct"):
        width_from_pct(8192, pct)


def test_ratio_is_exact_not_a_float_accident():
    # 2.4 * 2048 = 4915.2 -> 4916, the paper's 40% point; 2.0 * 576 is exactly 1152, not 1153.
    assert width_from_ratio(8192, 2048, 2.4) == 4916
    assert width_from_ratio(1536, 576, 2.0) == 1152
    assert width_from_ratio(8192, 3072, 8192 / 3072) == 8192


@pytest.mark.parametrize("ratio", [0, -1.0, 4.01, float("nan")])
def test_bad_ratio_is_refused(ratio):
    with pytest.raises(WidthwiseError, match="--ratio"):
        width_from_ratio(8192, 2048, ratio)


def test_align_never_grows_and_never_goes_below_align():
    for k in range(64, 3000, 7):
        a = align_width(k, 64)
        assert a <= k and a % 64 == 0 and a >= 64
        assert k - a < 64
    assert align_width(4916, 128) == 4864
    with pytest.raises(WidthwiseError, match="--align"):
        align_width(50, 64)
    for bad in (0, -64):
        with pytest.raises(WidthwiseError, match="--align"):
            align_width(4916, bad)


def test_spec_needs_exactly_one_width_and_a_known_method():
    with pytest.raises(WidthwiseError, match="exactly one"):
        PruneSpec(pct=10, ratio=2.0)
    with pytest.raises(WidthwiseError, match="exactly one"):
        PruneSpec()
    with pytest.raises(WidthwiseError, match="unknown method"):
        PruneSpec(method="magnitude", pct=10)
    assert PruneSpec(method="MAW", pct=10).method == "ppm"
    with pytest.raises(WidthwiseError, match="--intermediate-size"):
        PruneSpec(intermediate_size=0).width(64, 32)
    with pytest.raises(WidthwiseError, match="--intermediate-size"):
        PruneSpec(intermediate_size=65).width(64, 32)


def test_ppm_is_peak_to_peak_of_gate_plus_up():
    gate = torch.tensor([[1.0, -2.0, 0.5], [3.0, 3.0, 3.0], [0.2, 0.4, 0.9]])
    up = torch.tensor([[0.0, 1.0, -1.0], [-5.0, 5.0, 0.0], [2.0, 2.5, 1.0]])
    expected = torch.tensor([3.0 + 2.0, 0.0 + 10.0, 0.7 + 1.5])
    torch.testing.assert_close(ppm(gate, up, torch.Generator()), expected)
    # An all-positive row shows the difference from max + |min| (optipfair's spelling): range, not sum.
    assert ppm(gate, up, torch.Generator())[2].item() == pytest.approx(2.2)


def test_other_methods_follow_their_definitions():
    g = torch.Generator()
    gate = torch.tensor([[1.0, -1.0, 2.0], [0.0, 0.0, 4.0]])
    up = torch.tensor([[3.0, 0.0, -4.0], [1.0, 1.0, 1.0]])
    torch.testing.assert_close(score("vow", gate, up, g), gate.var(dim=1) + up.var(dim=1))
    torch.testing.assert_close(score("pon", gate, up, g), torch.tensor([4.0 * 7.0, 4.0 * 3.0]))
    torch.testing.assert_close(score("l2", gate, up, g), torch.tensor([6**0.5 + 5.0, 4.0 + 3**0.5]))
    assert get("ppm-reverse").keep == "lowest"


def test_selection_keeps_top_k_ascending_with_ties_to_the_lower_index():
    scores = torch.tensor([1.0, 5.0, 3.0, 5.0, 3.0, 0.0])
    assert select_neurons(scores, 3).tolist() == [1, 2, 3]  # 5, 5, then the first 3
    assert select_neurons(scores, 2, keep="lowest").tolist() == [0, 5]
    assert select_neurons(torch.zeros(8), 4).tolist() == [0, 1, 2, 3]


def test_random_is_seeded():
    gate = torch.zeros(100, 4)
    a = score("random", gate, gate, torch.Generator().manual_seed(7))
    b = score("random", gate, gate, torch.Generator().manual_seed(7))
    c = score("random", gate, gate, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
