"""Fetch the offline benchmark data widthwise reads from $WIDTHWISE_DATA_DIR, for machines that have the web.

    python tools/fetch_data.py --dest DIR

Downloads IFEval prompts and TruthfulQA at the upstream commits that lm-eval's hub tasks use, derives
TruthfulQA's multiple-choice JSONL exactly as the Hugging Face loading script does, unpacks NLTK's English
punkt_tab, and verifies every file against data.sha256 (the same checksums as the project's shared data
README). Files already present with the right checksum are kept. Nothing is written on a mismatch.
Standard library only, so it runs before widthwise is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GH = "https://raw.githubusercontent.com"
IFEVAL_AT = "google-research/google-research/d76be322625d4401655660f0f02681f96eb6783a"
TRUTHFULQA_AT = "sylinrl/TruthfulQA/013686a06be7a7bde5bf8223943e106c7250123c"
SOURCES = {
    "ifeval/input_data.jsonl": f"{GH}/{IFEVAL_AT}/instruction_following_eval/data/input_data.jsonl",
    "truthfulqa/mc_task.json": f"{GH}/{TRUTHFULQA_AT}/data/mc_task.json",
}
PUNKT_ZIP = f"{GH}/nltk/nltk_data/gh-pages/packages/tokenizers/punkt_tab.zip"


def expected() -> dict[str, str]:
    pairs = (line.split() for line in (ROOT / "data.sha256").read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mc_jsonl(mc_task: bytes) -> bytes:
    """TruthfulQA's mc_task.json in the HF `multiple_choice` layout, answer order preserved."""
    lines = []
    for row in json.loads(mc_task.decode("utf-8")):
        out = {"question": row["question"]}
        for key in ("mc1_targets", "mc2_targets"):
            out[key] = {"choices": list(row[key].keys()), "labels": [int(v) for v in row[key].values()]}
        lines.append(json.dumps(out, ensure_ascii=False) + "\n")
    return "".join(lines).encode("utf-8")


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def fetch(dest: Path) -> None:
    want = expected()
    todo = {
        name: d
        for name, d in want.items()
        if not ((dest / name).is_file() and sha256((dest / name).read_bytes()) == d)
    }
    got: dict[str, bytes] = {}
    for name in todo:
        if name in SOURCES:
            got[name] = download(SOURCES[name])
    if "truthfulqa/mc_validation.jsonl" in todo:
        task = got.get("truthfulqa/mc_task.json") or (dest / "truthfulqa/mc_task.json").read_bytes()
        got["truthfulqa/mc_validation.jsonl"] = mc_jsonl(task)
    punkt = [n for n in todo if n.startswith("nltk_data/")]
    if punkt:
        with zipfile.ZipFile(io.BytesIO(download(PUNKT_ZIP))) as z:
            for name in punkt:
                got[name] = z.read(name.removeprefix("nltk_data/tokenizers/"))
    bad = [f"{n}: sha256 {sha256(b)} != {want[n]}" for n, b in got.items() if sha256(b) != want[n]]
    if bad:
        sys.exit("fetch_data: checksum mismatch, nothing written:\n  " + "\n  ".join(bad))
    for name, data in got.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    print(f"fetch_data: {len(got)} fetched, {len(want) - len(todo)} already present, all verified in {dest}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, required=True)
    fetch(ap.parse_args().dest)
