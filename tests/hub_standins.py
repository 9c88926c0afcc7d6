"""Local stand-ins of the hub datasets that have no offline copy (WikiText, MuSR), laid out as a hub mirror.

    write_mirror(dest) -> dest    dest/<org>/<name>/<revision>/..., the revisions pinned in suites.toml

Each stand-in is a dataset repository as `hf download --repo-type dataset ORG/NAME --revision REV
--local-dir DEST/ORG/NAME/REV` leaves it: the data files in the repository's own layout and formats, and
a README whose `configs` metadata maps them to the configurations and splits lm-eval's built-in tasks
ask for. A handful of rows in the exact column layout of each dataset:

  EleutherAI/wikitext_document_level  configuration wikitext-2-raw-v1 (and wikitext-103-raw-v1, so that
      reading the right configuration is tested), splits train/validation/test, one column `page` (a
      whole Wikipedia article in WikiText's tokenised spacing: " @-@ ", " , ", "= = heading = =").
  TAUR-Lab/MuSR  one configuration, splits murder_mysteries, object_placements, team_allocation (read
      from murder_mystery.csv, object_placements.csv, team_allocation.csv), columns narrative, question,
      choices (a string holding a Python list: lm-eval's utils ast.literal_eval it), answer_index,
      answer_choice (the gold choice's text: lm-eval's doc_to_target).

The texts are written for these tests; only the layout is the datasets'.
"""

from __future__ import annotations

import csv
from pathlib import Path

WIKITEXT_CONFIG = "wikitext-2-raw-v1"
WIKITEXT_SPLITS = ("train", "validation", "test")
MUSR_SPLITS = {  # split -> file, as the repository's README maps them
    "murder_mysteries": "murder_mystery.csv",
    "object_placements": "object_placements.csv",
    "team_allocation": "team_allocation.csv",
}
MUSR_COLUMNS = ("narrative", "question", "choices", "answer_index", "answer_choice")

_PAGES = [
    " = Valkyrie Ridge = \n \n Valkyrie Ridge is a 1 @,@ 204 m mountain in the north of the range . It was"
    " first climbed in 1898 by a party of four , who left a cairn on the summit . \n \n = = Geology = = \n"
    " \n The ridge is made of granite , cut by dykes of basalt @-@ rich rock . \n",
    " = The Lost Harbour = \n \n The Lost Harbour is a 1954 novel . Its author 's second book , it sold"
    " 40 @,@ 000 copies in its first year . \n \n = = Plot = = \n \n A fisherman finds a map ; he sails"
    " out at dawn and does not return . \n",
    " = River Oster = \n \n The Oster is a river of 86 @.@ 5 km . It rises in the hills and joins the"
    ' sea at a wide estuary , where ( as the locals say ) the tide " runs twice " . \n',
]


def _wikitext_rows(config: str, split: str) -> list[dict[str, str]]:
    """A few whole pages per split; each (config, split) differs so a test can tell which it read."""
    n = {"train": 3, "validation": 2, "test": 3}[split]
    tag = "" if config == WIKITEXT_CONFIG else " ( large )"
    return [{"page": page.replace(" = \n", f"{tag} = \n", 1)} for page in _PAGES[:n]]


def _musr_rows(split: str) -> list[dict[str, str | int]]:
    people = {
        "murder_mysteries": (["Mackenzie", "Ana"], "Who is the most likely murderer?"),
        "object_placements": (
            ["kitchen drawer", "garden shed", "office desk"],
            "Which location is the most likely place Lena would look to find the keys given the story?",
        ),
        "team_allocation": (
            ["Cooking: Ivy, Painting: Omar and Ruth", "Cooking: Omar, Painting: Ivy and Ruth"],
            "Given the story, how would you uniquely allocate each person to make sure both tasks are "
            "accomplished efficiently?",
        ),
    }[split]
    choices, question = people
    rows = []
    for i in range(2):
        gold = (i + len(split)) % len(choices)
        rows.append(
            {
                "narrative": f"Story {i + 1} of {split.replace('_', ' ')}. The evening was quiet until "
                f"a sound came from the hall. Everyone present had a reason to be there, and {choices[gold]} "
                "had the strongest one.",
                "question": question,
                "choices": repr(choices),
                "answer_index": gold,
                "answer_choice": choices[gold],
            }
        )
    return rows


def _readme(configs: list[tuple[str, list[tuple[str, str]]]]) -> str:
    lines = ["---", "configs:"]
    for name, files in configs:
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, path in files:
            lines += [f"  - split: {split}", f"    path: {path}"]
    return "\n".join(
        [*lines, "---", "", "A stand-in written by widthwise's tests (tests/hub_standins.py).", ""]
    )


def _write_wikitext(repo: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    configs = []
    for config in (WIKITEXT_CONFIG, "wikitext-103-raw-v1"):
        files = []
        for split in WIKITEXT_SPLITS:
            rel = f"{config}/{config}-{split}.parquet"
            (repo / config).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(_wikitext_rows(config, split)), repo / rel)
            files.append((split, rel))
        configs.append((config, files))
    (repo / "README.md").write_text(_readme(configs), encoding="utf-8")


def _write_musr(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    for split, name in MUSR_SPLITS.items():
        with open(repo / name, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=MUSR_COLUMNS)
            w.writeheader()
            w.writerows(_musr_rows(split))
    (repo / "README.md").write_text(_readme([("default", list(MUSR_SPLITS.items()))]), encoding="utf-8")


def write_mirror(dest: Path) -> Path:
    """Stand-ins of WikiText's and MuSR's hub repositories at their pinned revisions under `dest`."""
    from widthwise.evaluation.suites import pinned_dataset

    dest = Path(dest)
    for task, write in (("wikitext", _write_wikitext), ("leaderboard_musr", _write_musr)):
        pin = pinned_dataset(task)
        assert pin is not None, f"suites.toml pins no dataset for {task}"
        path, revision = pin
        write(dest.joinpath(*path.split("/"), revision))
    return dest
