"""`widthwise prune` on bad input: one clear line, exit code 2, nothing written."""

import subprocess
import sys

import pytest
import torch

from support import tiny_model
from widthwise.cli import main
from widthwise.models import mlp_layers


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "llama"
    tiny_model("LlamaForCausalLM").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("tiny") / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def nan_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "nan"
    model = tiny_model("LlamaForCausalLM")
    with torch.no_grad():
        mlp_layers(model)[0].gate_proj.weight[0, 0] = float("nan")
    model.save_pretrained(path)
    return path


def run_cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err.strip()
    return code, err


BAD = {
    "pct-negative": (["--pct", "-1"], "--pct"),
    "pct-100": (["--pct", "100"], "--pct"),
    "pct-nan": (["--pct", "nan"], "--pct"),
    "ratio-zero": (["--ratio", "0"], "--ratio"),
    "ratio-above-current": (["--ratio", "2.5"], "above the model's current expansion ratio"),
    "ratio-not-a-number": (["--ratio", "wide"], "--ratio"),
    "k-zero": (["--intermediate-size", "0"], "--intermediate-size"),
    "k-above-I": (["--intermediate-size", "65"], "--intermediate-size"),
    "align-zero": (["--pct", "10", "--align", "0"], "--align"),
    "align-negative": (["--pct", "10", "--align", "-8"], "--align"),
    "unknown-method": (["--pct", "10", "--method", "magnitude"], "unknown method"),
    "two-widths": (["--pct", "10", "--ratio", "1.5"], "not allowed with"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_width_arguments(case, tiny_dir, tmp_path, capsys):
    args, message = BAD[case]
    out = tmp_path / "out"
    code, err = run_cli(["prune", str(tiny_dir), *args, "--out", str(out)], capsys)
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_missing_model(tmp_path, capsys):
    code, err = run_cli(
        ["prune", str(tmp_path / "nowhere"), "--pct", "10", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "not found" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_non_glu_model(gpt2_dir, tmp_path, capsys):
    code, err = run_cli(["prune", str(gpt2_dir), "--pct", "10", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "GPT2LMHeadModel is not a supported GLU architecture" in err
    assert list(tmp_path.iterdir()) == []


def test_nan_weights(nan_dir, tmp_path, capsys):
    code, err = run_cli(["prune", str(nan_dir), "--pct", "10", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "NaN or Inf" in err
    assert list(tmp_path.iterdir()) == []


def test_non_empty_out_needs_force(tiny_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    code, err = run_cli(["prune", str(tiny_dir), "--pct", "10", "--out", str(out)], capsys)
    assert code == 2 and "--force" in err
    assert [p.name for p in out.iterdir()] == ["precious.txt"]

    code, _ = run_cli(["prune", str(tiny_dir), "--pct", "10", "--out", str(out), "--force"], capsys)
    assert code == 0
    assert not (out / "precious.txt").exists() and (out / "widthwise.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or backup folders left


def test_console_script_reports_one_line(tiny_dir, tmp_path):
    # The installed entry point, as a user runs it.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "widthwise",
            "prune",
            str(tiny_dir),
            "--pct",
            "100",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "widthwise prune: error: --pct must be in [0, 100), got 100.0"
    ]
