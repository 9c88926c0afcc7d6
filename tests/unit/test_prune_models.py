"""The pruner on tiny random models of every supported architecture, and on the paper's 1B/3B shapes."""

import copy
import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from support import tiny_model
from widthwise.errors import WidthwiseError
from widthwise.models import count_parameters, mlp_layers, save_model
from widthwise.prune import PruneSpec, apply, plan, prune_model
from widthwise.pruners import registry


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_pct_zero_gives_identical_logits(arch, input_ids):
    model = tiny_model(arch)
    before = logits(model, input_ids)
    report = prune_model(model, PruneSpec(pct=0))
    assert report.intermediate_size == report.intermediate_size_before == 64
    assert torch.equal(logits(model, input_ids), before)


@pytest.mark.parametrize("method", sorted(registry()))  # every registered method, a new one included
def test_pruned_equals_original_with_dropped_neurons_zeroed(arch, input_ids, method):
    original = tiny_model(arch)
    pruned = copy.deepcopy(original)
    spec = PruneSpec(method=method, pct=40, seed=3)
    keep, _ = plan(original, spec)
    report = prune_model(pruned, spec)
    assert report.intermediate_size == 64 - 25

    # Zero the dropped neurons' activations (the input of down_proj) in the unpruned model.
    handles = []
    for mlp, idx in zip(mlp_layers(original), keep, strict=True):
        mask = torch.zeros(64)
        mask[idx] = 1.0
        handles.append(mlp.down_proj.register_forward_pre_hook(lambda m, a, mask=mask: (a[0] * mask,)))
    try:
        expected = logits(original, input_ids)
    finally:
        for h in handles:
            h.remove()
    assert (logits(pruned, input_ids) - expected).abs().max().item() <= 1e-5
    # And pruning really changed the function (the test above could not pass vacuously).
    assert (logits(original, input_ids) - expected).abs().max().item() > 1e-4


def test_shapes_config_and_biases(input_ids):
    model = tiny_model("LlamaForCausalLM", mlp_bias=True)
    mlp0 = copy.deepcopy(mlp_layers(model)[0])
    spec = PruneSpec(pct=50)
    idx = plan(model, spec)[0][0]
    prune_model(model, spec)
    new = mlp_layers(model)[0]
    assert model.config.intermediate_size == 32
    assert new.gate_proj.weight.shape == (32, 32) and new.up_proj.weight.shape == (32, 32)
    assert new.down_proj.weight.shape == (32, 32)
    assert torch.equal(new.gate_proj.weight, mlp0.gate_proj.weight[idx])
    assert torch.equal(new.up_proj.bias, mlp0.up_proj.bias[idx])
    assert torch.equal(new.down_proj.weight, mlp0.down_proj.weight[:, idx])
    assert torch.equal(new.down_proj.bias, mlp0.down_proj.bias)  # per output feature: kept whole


def test_ppm_keeps_the_highest_scores_per_layer():
    model = tiny_model("LlamaForCausalLM")
    for mlp, idx in zip(mlp_layers(model), plan(model, PruneSpec(pct=50))[0], strict=True):
        g, u = mlp.gate_proj.weight, mlp.up_proj.weight
        score = (g.amax(1) - g.amin(1)) + (u.amax(1) - u.amin(1))
        dropped = torch.ones(64, dtype=torch.bool)
        dropped[idx] = False
        assert score[idx].min() >= score[dropped].max()
        assert torch.equal(idx, idx.sort().values)


def test_save_and_from_pretrained_round_trip_exactly(arch, input_ids, tmp_path):
    model = tiny_model(arch)
    report = prune_model(model, PruneSpec(pct=30))
    out = save_model(model, None, tmp_path / "pruned", {"k": report.intermediate_size}, force=False)
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(reloaded).__name__ == arch
    assert reloaded.config.intermediate_size == report.intermediate_size
    assert (logits(reloaded, input_ids) - logits(model, input_ids)).abs().max().item() == 0
    assert json.loads((out / "widthwise.json").read_text()) == {"k": report.intermediate_size}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pruned"]  # no temporary folders left behind


def test_unsupported_architectures_are_named():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64))
    with pytest.raises(WidthwiseError, match="GPT2LMHeadModel is not a supported.*LlamaForCausalLM"):
        prune_model(gpt2, PruneSpec(pct=10))


def test_nan_weights_are_refused_and_nothing_changes():
    model = tiny_model("LlamaForCausalLM")
    with torch.no_grad():
        mlp_layers(model)[1].up_proj.weight[3, 3] = float("inf")
    with pytest.raises(WidthwiseError, match="layer 1 up_proj holds NaN or Inf"):
        prune_model(model, PruneSpec(pct=10))
    assert model.config.intermediate_size == 64
    assert all(m.gate_proj.out_features == 64 for m in mlp_layers(model))


LLAMA_32 = {
    "1B": (dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, head_dim=64), 1_235_814_400),
    "3B": (dict(hidden_size=3072, num_hidden_layers=28, num_attention_heads=24, head_dim=128), 3_212_749_824),
}
PAPER_PARAMS = {
    "1B": [1_155_303_424, 1_074_792_448, 994_281_472, 913_770_496, 833_161_216, 752_650_240],
    "3B": [3_001_408_512, 2_790_067_200, 2_578_725_888, 2_367_384_576, 2_155_785_216, 1_944_443_904],
}


@pytest.mark.parametrize("size", ["1B", "3B"])
def test_llama_32_published_shapes_give_the_papers_widths_and_parameter_counts(size):
    from transformers import LlamaConfig, LlamaForCausalLM

    shape, base_params = LLAMA_32[size]
    config = LlamaConfig(
        intermediate_size=8192, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, **shape
    )
    got_k, got_params = [], []
    for pct in (10, 20, 30, 40, 50, 60):
        with torch.device("meta"):
            model = LlamaForCausalLM(copy.deepcopy(config))
        assert count_parameters(model) == base_params
        k = PruneSpec(pct=pct).width(8192, config.hidden_size)
        apply(model, [torch.arange(k)] * config.num_hidden_layers)
        got_k.append(model.config.intermediate_size)
        got_params.append(count_parameters(model))
    assert got_k == [7373, 6554, 5735, 4916, 4096, 3277]
    assert got_params == PAPER_PARAMS[size]
