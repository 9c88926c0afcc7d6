"""Model specs that cannot be loaded fail with a clear message."""

import pytest

from support import tiny_model
from widthwise.errors import WidthwiseError
from widthwise.models import check_output_dir, resolve, weights_sha256


def test_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(WidthwiseError, match="no config.json"):
        resolve(str(tmp_path))


@pytest.mark.parametrize("spec", ["./missing-folder", "/no/such/model", "not-a-hub-id", "missing.gguf"])
def test_missing_models(spec):
    with pytest.raises(WidthwiseError, match="not found|does not exist"):
        resolve(spec)


def test_hub_ids_pass_through():
    assert resolve("meta-llama/Llama-3.2-1B") == "meta-llama/Llama-3.2-1B"


def test_weights_hash_sees_every_weight():
    a, b = tiny_model("LlamaForCausalLM"), tiny_model("LlamaForCausalLM")
    assert weights_sha256(a) == weights_sha256(b)
    with __import__("torch").no_grad():
        b.model.layers[1].mlp.down_proj.weight[0, 0] += 1e-6
    assert weights_sha256(a) != weights_sha256(b)


def test_output_folder_rules(tmp_path):
    assert check_output_dir(tmp_path / "new", force=False) == tmp_path / "new"
    (tmp_path / "file").write_text("x")
    with pytest.raises(WidthwiseError, match="not a folder"):
        check_output_dir(tmp_path / "file", force=True)
