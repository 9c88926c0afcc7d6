"""Fetch the benchmark data no wheel ships (IFEval, TruthfulQA, NLTK punkt_tab), verified, once.

    widthwise fetch-data [--dest DIR]          (default: $WIDTHWISE_CACHE/data)
    python tools/fetch_data.py --dest DIR      (the same, before widthwise is installed)

The files come from the upstream commits lm-eval's hub tasks use; TruthfulQA's multiple-choice JSONL is
derived from mc_task.json exactly as the Hugging Face loading script does, punkt_tab's English files are
taken from NLTK's zip. Every file is checked against data.sha256 (beside this module) before anything is
written: all files are staged in a temporary folder beside DEST and moved in only when every checksum
matches, so a failed or corrupted fetch leaves nothing behind. Files already present and correct are kept.
$WIDTHWISE_DATA_URL replaces the upstream host (https://raw.githubusercontent.com), e.g. for a mirror.

Standard library only, so tools/fetch_data.py can run it before widthwise and its dependencies are installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from widthwise.errors import WidthwiseError

URL_ENV = "WIDTHWISE_DATA_URL"
UPSTREAM = "https://raw.githubusercontent.com"
IFEVAL_AT = "google-research/google-research/d76be322625d4401655660f0f02681f96eb6783a"
TRUTHFULQA_AT = "sylinrl/TruthfulQA/013686a06be7a7bde5bf8223943e106c7250123c"
# file in the data folder -> its path under the host; the rest are derived from these
DOWNLOADS = {
    "ifeval/input_data.jsonl": f"{IFEVAL_AT}/instruction_following_eval/data/input_data.jsonl",
    "truthfulqa/mc_task.json": f"{TRUTHFULQA_AT}/data/mc_task.json",
}
PUNKT_ZIP = "nltk/nltk_data/gh-pages/packages/tokenizers/punkt_tab.zip"
SIZE = "about 2 MB"  # 207 kB IFEval + 711 kB TruthfulQA + the punkt_tab zip (1.4 MB upstream)


class FetchError(WidthwiseError):
    pass


def expected() -> dict[str, str]:
    """{relative path: sha256} of every file a complete data folder holds."""
    text = (Path(__file__).with_name("data.sha256")).read_text()
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line.strip())}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def missing(folder: Path) -> list[str]:
    """The files of `folder` that are absent or have the wrong checksum."""
    return [n for n, d in expected().items() if not ((folder / n).is_file() and _file_ok(folder / n, d))]


def _file_ok(path: Path, digest: str) -> bool:
    return sha256(path.read_bytes()) == digest


def mc_jsonl(mc_task: bytes) -> bytes:
    """TruthfulQA's mc_task.json in the HF `multiple_choice` layout, answer order preserved."""
    lines = []
    for row in json.loads(mc_task.decode("utf-8")):
        out = {"question": row["question"]}
        for key in ("mc1_targets", "mc2_targets"):
            out[key] = {"choices": list(row[key].keys()), "labels": [int(v) for v in row[key].values()]}
        lines.append(json.dumps(out, ensure_ascii=False) + "\n")
    return "".join(lines).encode("utf-8")


def base_url() -> str:
    return os.environ.get(URL_ENV, UPSTREAM).rstrip("/")


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except (urllib.error.URLError, OSError) as e:
        why = getattr(e, "reason", None) or e
        raise FetchError(f"cannot download {url}: {why}") from None


def fetch(
    dest: Path, *, base: str | None = None, timeout: float = 60, log: Callable[[str], None] = print
) -> Path:
    """Make `dest` a complete, verified data folder; return it. Raises FetchError, writing nothing."""
    dest = Path(dest).expanduser().resolve()
    want = expected()
    todo = missing(dest) if dest.is_dir() else list(want)
    if not todo:
        return dest
    host = (base or base_url()).rstrip("/")
    log(f"widthwise: fetching IFEval, TruthfulQA and punkt_tab ({SIZE}) from {host} into {dest}")
    got: dict[str, bytes] = {}
    for name, path in DOWNLOADS.items():
        if name in todo or (name == "truthfulqa/mc_task.json" and "truthfulqa/mc_validation.jsonl" in todo):
            got[name] = _download(f"{host}/{path}", timeout)
    if "truthfulqa/mc_validation.jsonl" in todo:
        try:
            got["truthfulqa/mc_validation.jsonl"] = mc_jsonl(got["truthfulqa/mc_task.json"])
        except (ValueError, KeyError, AttributeError) as e:
            raise FetchError(
                f"truthfulqa/mc_task.json from {host} is not TruthfulQA's MC data: {e}"
            ) from None
    punkt = [n for n in todo if n.startswith("nltk_data/")]
    if punkt:
        blob = _download(f"{host}/{PUNKT_ZIP}", timeout)
        try:
            with zipfile.ZipFile(io.BytesIO(blob)) as z:
                for name in punkt:
                    got[name] = z.read(name.removeprefix("nltk_data/tokenizers/"))
        except (zipfile.BadZipFile, KeyError) as e:
            raise FetchError(f"{host}/{PUNKT_ZIP} is not NLTK's punkt_tab zip: {e}") from None
    got = {n: b for n, b in got.items() if n in todo}
    bad = [
        f"{n} (sha256 {sha256(b)[:12]}…, expected {want[n][:12]}…)"
        for n, b in got.items()
        if sha256(b) != want[n]
    ]
    if bad:
        raise FetchError(f"checksum mismatch, nothing written: {'; '.join(bad)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}-fetch-", dir=dest.parent))
    try:
        for name, blob in got.items():
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            (stage / name).write_bytes(blob)
        for name in got:  # every file verified; a rename each (a concurrent fetch writes the same bytes)
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / name, dest / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"widthwise: {len(got)} data files fetched and verified, {len(want) - len(todo)} already present")
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fetch_data", description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, required=True, help="the data folder to fill")
    args = ap.parse_args(argv)
    try:
        fetch(args.dest)
    except FetchError as e:
        print(f"fetch_data: error: {e}")
        return 2
    return 0
