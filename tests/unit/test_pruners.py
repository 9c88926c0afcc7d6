"""Pruning plug-ins: a real installed distribution (a dist-info with entry points on sys.path) registers a
method by name; a broken one is one line naming its package; the pruner's invariants hold whatever a
plug-in returns; provenance names the package, version and source."""

import copy

import pytest
import torch

from plugins import on_path, write_plugin
from support import run_cli, tiny_model, word_llama, word_tokenizer
from widthwise import pruners
from widthwise.errors import WidthwiseError
from widthwise.models import mlp_layers
from widthwise.prune import PruneSpec, plan, prune_model
from widthwise.results import new_result

GOOD = """
import torch
import widthwise

def down_norm(layer):
    '''L2 norm of each neuron's down_proj column.'''
    return layer.down.norm(dim=0)

@widthwise.pruner(calibration=("inputs", "intermediate"))
def seen(layer):
    '''Records what it was given, scores by activation norm.'''
    SEEN.append((layer.index, tuple(layer.inputs.shape), tuple(layer.intermediate.shape)))
    return layer.intermediate.norm(dim=0)

SEEN = []

def constant(layer):
    '''Every neuron ties.'''
    return torch.ones(layer.size)

def by_layer(layer):
    '''Layer 0 prefers high indices, the others low ones: k must still be the same everywhere.'''
    i = torch.arange(layer.size, dtype=torch.float32)
    return i if layer.index == 0 else -i

def short(layer):
    return torch.ones(layer.size - 1)

def nan(layer):
    s = layer.down.norm(dim=0)
    s[3] = float("nan")
    return s

def as_list(layer):
    return [1.0] * layer.size

def mutates(layer):
    layer.gate.zero_()
    return layer.up.norm(dim=1)
"""

METHODS = {
    "down-norm": "down_norm",
    "seen": "seen",
    "constant": "constant",
    "by-layer": "by_layer",
    "short": "short",
    "nan": "nan",
    "as-list": "as_list",
    "mutates": "mutates",
}


@pytest.fixture
def plugin(tmp_path):
    site = write_plugin(tmp_path / "site", "acme-pruners", "1.4.2", "acme_scores", GOOD, METHODS)
    with on_path(site):
        yield site


def test_an_installed_plugin_is_listed_with_its_package_version_and_doc(plugin, capsys):
    m = pruners.get("down-norm")
    assert (m.package, m.version, m.entry_point) == ("acme-pruners", "1.4.2", "acme_scores:down_norm")
    assert m.keep == "highest" and m.calibration == ()
    assert pruners.get("seen").calibration == ("inputs", "intermediate")
    assert pruners.get("down-norm-reverse").keep == "lowest"
    code, out, err = run_cli(["methods"], capsys)
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("down-norm "))
    assert "acme-pruners" in row and "1.4.2" in row and "acme_scores:down_norm" in row
    assert "L2 norm of each neuron's down_proj column." in row
    assert any(line.startswith("ppm ") and "built-in" in line for line in out.splitlines())


@pytest.mark.parametrize(
    "source, methods, expected",
    [
        ("import no_such_module\n", {"m": "f"}, "cannot load acme_scores:f: ModuleNotFoundError"),
        ("def f(a, b):\n    return a\n", {"m": "f"}, "is not a score function: its signature (a, b)"),
        ("f = 3\n", {"m": "f"}, "is not a score function: int is not callable"),
        ("def f(layer):\n    return 0\n", {"ppm": "f"}, "the name is already taken"),
        ("def f(layer):\n    return 0\n", {"m-reverse": "f"}, "neither 'base' nor end in '-reverse'"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_its_package(tmp_path, capsys, source, methods, expected):
    site = write_plugin(tmp_path / "site", "broken-pruners", "0.0.1", "acme_scores", source, methods)
    with on_path(site):
        code, out, err = run_cli(["methods"], capsys)
        name = next(iter(methods))
        assert code == 2 and out == ""
        assert err.count("\n") == 0 and "Traceback" not in err
        assert f"plug-in method {name!r} (package broken-pruners 0.0.1)" in err and expected in err
        # Nothing falls back to a registry without it: every command that names a method refuses.
        with pytest.raises(WidthwiseError, match="broken-pruners"):
            PruneSpec(method="ppm", pct=10)


def test_the_environment_variable_restricts_which_plugins_load(plugin, monkeypatch, capsys):
    monkeypatch.setenv(pruners.PLUGINS_ENV, "down-norm")
    assert pruners.get("down-norm").package == "acme-pruners"
    with pytest.raises(WidthwiseError, match="unknown method 'constant'"):
        pruners.get("constant")
    monkeypatch.setenv(pruners.PLUGINS_ENV, "")
    with pytest.raises(WidthwiseError, match="unknown method 'down-norm'"):
        pruners.get("down-norm")
    assert pruners.get("ppm").builtin  # the built-ins are never restricted
    monkeypatch.setenv(pruners.PLUGINS_ENV, "down-norm,absent")
    code, _, err = run_cli(["methods"], capsys)
    assert code == 2 and "WIDTHWISE_PLUGINS names absent, which no installed package registers" in err


def test_a_plugin_prunes_and_its_provenance_names_package_version_and_source(plugin):
    model = tiny_model()
    report = prune_model(model, PruneSpec(method="down-norm", pct=25))
    pr = report.pruner
    assert pr["method"] == "down-norm" and pr["package"] == "acme-pruners" and pr["version"] == "1.4.2"
    assert pr["entry_point"] == "acme_scores:down_norm" and len(pr["source_sha256"]) == 64
    assert pr["calibration"] is None
    assert report.intermediate_size == 48
    # The neurons kept are the plug-in's: the 48 largest down_proj columns of every layer.
    fresh = tiny_model()
    for mlp, pruned in zip(mlp_layers(fresh), mlp_layers(model), strict=True):
        keep = torch.sort(torch.sort(mlp.down_proj.weight.norm(dim=0), descending=True, stable=True)[1][:48])[
            0
        ]
        assert torch.equal(pruned.down_proj.weight, mlp.down_proj.weight[:, keep])
    # Every Result of the pruned model carries it in provenance.pruner, and a built-in names widthwise.
    model_facts = {"name": "tiny", "intermediate_size": 48, "hidden_size": 32}
    r = new_result(
        stage="eval", tier="cpu", model=model_facts, pruning=report, suite="smoke", settings={}, provenance={}
    )
    assert r["provenance"]["pruner"] == pr and "pruner" not in r["pruning"]
    builtin = prune_model(tiny_model(), PruneSpec(method="ppm", pct=25)).pruner
    assert builtin["package"] == "widthwise" and builtin["entry_point"] is None


def test_source_hash_changes_with_the_plugin_code(tmp_path):
    a = write_plugin(
        tmp_path / "a", "acme-pruners", "1.0", "acme_a", "def f(layer):\n    return 1\n", {"m": "f"}
    )
    b = write_plugin(
        tmp_path / "b", "acme-pruners", "1.0", "acme_b", "def f(layer):\n    return 2\n", {"m": "f"}
    )
    with on_path(a):
        first = pruners.get("m").source_sha256
    with on_path(b):
        assert pruners.get("m").source_sha256 != first


@pytest.mark.parametrize(
    "method, message",
    [
        (
            "short",
            "method short, layer 0: returned scores of shape (63,); one per intermediate neuron is (64,)",
        ),
        ("nan", "method nan, layer 0: 1 of 64 scores are NaN; refusing to prune"),
        ("as-list", "method as-list, layer 0: returned list, not a torch.Tensor of 64 scores"),
    ],
)
def test_wrong_shapes_nan_and_non_tensors_are_refused_and_the_model_is_untouched(plugin, method, message):
    model = tiny_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(WidthwiseError) as e:
        prune_model(model, PruneSpec(method=method, pct=25))
    assert str(e.value) == message
    after = model.state_dict()
    assert model.config.intermediate_size == 64
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_invariants_hold_whatever_the_plugin_returns(plugin):
    model = tiny_model()
    keep, _ = plan(model, PruneSpec(method="constant", pct=25))
    assert all(k.tolist() == list(range(48)) for k in keep)  # ties to the lower index
    keep, _ = plan(model, PruneSpec(method="constant-reverse", pct=25))
    assert all(k.tolist() == list(range(48)) for k in keep)  # in the reverse too
    keep, _ = plan(model, PruneSpec(method="by-layer", pct=25))
    assert {k.numel() for k in keep} == {48}  # the same k in every layer
    assert keep[0].tolist() == list(range(16, 64)) and keep[1].tolist() == list(range(48))
    # A plug-in that writes into what it is given cannot touch the model: it scores copies.
    before = mlp_layers(model)[0].gate_proj.weight.clone()
    plan(model, PruneSpec(method="mutates", pct=25))
    assert torch.equal(mlp_layers(model)[0].gate_proj.weight, before)


def test_calibration_activations_reach_the_method_and_their_hash_is_recorded(plugin):
    import acme_scores

    from widthwise import calibration

    model, tok = word_llama(), word_tokenizer()
    with pytest.raises(WidthwiseError, match="need the model's tokenizer"):
        plan(model, PruneSpec(method="seen", pct=25))
    acme_scores.SEEN.clear()
    report = prune_model(model, PruneSpec(method="seen", pct=25), tok)
    cal = report.pruner["calibration"]
    docs = calibration.documents()
    assert cal["sha256"] == docs.sha256 and cal["documents"] == calibration.DOCUMENTS == len(docs.texts)
    tokens = cal["tokens"]
    assert calibration.DOCUMENTS < tokens <= calibration.DOCUMENTS * calibration.MAX_TOKENS
    assert [(0, (tokens, 32), (tokens, 64)), (1, (tokens, 32), (tokens, 64))] == acme_scores.SEEN
    # The same documents give the same neurons: the calibration set is fixed, not drawn per run.
    again = prune_model(word_llama(), PruneSpec(method="seen", pct=25), tok)
    assert again.kept_indices_sha256 == report.kept_indices_sha256


def test_the_eval_cache_key_covers_the_pruner():
    from widthwise.evaluation.cache import cache_key

    base = cache_key("w", {}, {}, {})
    a = cache_key("w", {}, {}, {}, {"source_sha256": "a", "calibration": {"sha256": "x"}})
    b = cache_key("w", {}, {}, {}, {"source_sha256": "a", "calibration": {"sha256": "y"}})
    c = cache_key("w", {}, {}, {}, {"source_sha256": "b", "calibration": {"sha256": "x"}})
    assert len({base, a, b, c}) == 4


def test_prune_eval_and_bench_take_a_plugin_by_name(plugin, tmp_path, capsys):
    import json

    from widthwise.commands import bench
    from widthwise.commands import eval as eval_command
    from widthwise.commands import prune as prune_command

    model_dir = tmp_path / "tiny"
    tiny_model().save_pretrained(model_dir)
    out = tmp_path / "pruned"
    code, stdout, err = run_cli(
        ["prune", str(model_dir), "--method", "down-norm", "--pct", "25", "--out", str(out)], capsys
    )
    assert code == 0, err
    manifest = json.loads((out / "widthwise.json").read_text())
    assert manifest["method"] == "down-norm" and manifest["intermediate_size"] == 48
    assert (manifest["pruner"]["package"], manifest["pruner"]["version"]) == ("acme-pruners", "1.4.2")
    # eval and bench read --method through the same arguments: a plug-in's name is a PruneSpec.
    import argparse

    from widthwise.prune import spec_from_args

    extra = {eval_command: ["--suite", "smoke"], prune_command: ["--out", "x"], bench: []}
    for command, more in extra.items():
        p = argparse.ArgumentParser()
        command.add_arguments(p)
        spec = spec_from_args(p.parse_args(["m", "--pct", "25", "--method", "down-norm-reverse", *more]))
        assert (spec.method, spec.pct) == ("down-norm-reverse", 25)
