"""Peak memory of `corpus ingest` on hostile and huge inputs: it must stay bounded whatever the input.

Each case runs the real CLI in a fresh subprocess on inputs generated in a temp folder (nothing big is
kept), beside one small note so that every run loads the model and the figures compare. Target: peak RSS
under 2 GB, and not growing with the input past the text cap ([ingest] max_text_mb, 50 MB by default).

    python bench/ingest_memory.py [--under-cap] [--keep]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from ingest_throughput import REPO, ChildFailed, cli

MB = 2**20
NOTE = "# Travel\n\nTrain tickets are booked through the travel desk, two weeks ahead.\n"
SENTENCE = "The quarterly review covers expenses, travel and the on-call rota in some detail. "
WORDS = ("expense travel review budget rota deploy incident policy receipt vendor quarter team "
         "onboarding laptop access badge holiday leave payroll pension").split()


def write_repeated(path: Path, unit: str, size: int, every: int = 0, joint: str = "") -> None:
    """``size`` bytes of ``unit`` repeated, with ``joint`` after every ``every`` units, written in blocks."""
    block = unit * (every or max(1, MB // len(unit))) + joint
    with path.open("w") as out:
        for _ in range(size // len(block)):
            out.write(block)
        out.write(block[:size % len(block)])


def one_line(path: Path, size: int) -> None:
    """One line of words without a sentence end: nothing for the chunker to cut at but spaces."""
    rng = random.Random(7)
    line = " ".join(rng.choice(WORDS) + str(rng.randrange(1000)) for _ in range(MB // 8))
    write_repeated(path, line + " ", size)


def slack_zip(path: Path, message_mb: int) -> None:
    """A Slack export holding one message of ``message_mb`` MB (streamed into the zip, small once deflated)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("channels.json", json.dumps([{"id": "C1", "name": "general"}]))
        zf.writestr("users.json", json.dumps([{"id": "U1", "name": "ann"}]))
        zf.writestr("general/2016-03-02.json", json.dumps([{"type": "message", "user": "U1", "ts": "1456927320.000100",
                                                            "text": "The runbook is pinned."}]))
        with zf.open("general/2016-03-01.json", "w", force_zip64=True) as out:
            out.write(b'[{"type": "message", "user": "U1", "ts": "1456840920.000100", "text": "')
            block = SENTENCE.encode() * (MB // len(SENTENCE))
            for _ in range(message_mb * MB // len(block)):
                out.write(block)
            out.write(b'"}]')


def docs_case(folder: Path, make) -> tuple[str, Path]:
    folder.mkdir(parents=True)
    (folder / "note.md").write_text(NOTE)
    make(folder)
    return f'kind = "docs"\npath = {json.dumps(str(folder))}', folder


def cases(tmp: Path, under_cap: bool) -> list[tuple[str, str, Path]]:
    """(name, source TOML, input path) for each case."""
    made = [
        ("200 MB text file", *docs_case(tmp / "big", lambda f: write_repeated(f / "big.txt", SENTENCE, 200 * MB,
                                                                              every=40, joint="\n\n"))),
        ("10 MB single-line text file", *docs_case(tmp / "line", lambda f: one_line(f / "line.txt", 10 * MB))),
        ("5 MB prose (paragraphs)", *docs_case(tmp / "prose", lambda f: write_repeated(f / "prose.txt", SENTENCE,
                                                                                         5 * MB, 12, "\n\n"))),
        ("5 MB prose in one paragraph", *docs_case(tmp / "para", lambda f: write_repeated(f / "para.txt", SENTENCE,
                                                                                            5 * MB))),
        ("sample corpus (reference)", f'kind = "docs"\npath = {json.dumps(str(REPO / "sample" / "docs"))}',
         REPO / "sample" / "docs"),
    ]
    slack = tmp / "slack.zip"
    slack_zip(slack, 300)
    made.insert(1, ("Slack zip, one 300 MB message", f'kind = "slack"\npath = {json.dumps(str(slack))}', slack))
    if under_cap:
        made.append(("49 MB text file (under the cap)",
                     *docs_case(tmp / "under", lambda f: write_repeated(f / "under.txt", SENTENCE, 49 * MB, 12,
                                                                        "\n\n"))))
    return made


def disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def run_case(folder: Path, source: str) -> tuple[float, float, int, str]:
    """Wall s, peak RSS MB, chunks stored, and the first failure line of one ingest."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "corpus.toml"
    config.write_text(f'[corpus]\npath = "store"\n\n[[sources]]\nname = "case"\n{source}\n')
    out, wall, rss = cli(config, "ingest", measure=True)
    failures = [line.strip() for line in out.splitlines() if line.startswith("  case/")]
    st = json.loads(cli(config, "status", "--json")[0])
    chunks = sum(s["chunks"] for s in st["sources"])
    return wall, rss / 1024, chunks, failures[0].removeprefix("case/") if failures else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--under-cap", action="store_true", help="also a 49 MB text file, read whole (minutes)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (inputs, stores) afterwards")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="corpus-memory-"))
    print(f"temp: {tmp}\n", flush=True)
    row = "{:<34} {:>10} {:>11} {:>7} {:>7}  {}"
    print(row.format("case", "on disk MB", "peak RSS MB", "wall s", "chunks", "failed item"), flush=True)
    try:
        for number, (name, source, path) in enumerate(cases(tmp / "inputs", args.under_cap)):
            wall, rss, chunks, failure = run_case(tmp / f"run{number}", source)
            print(row.format(name, f"{disk_size(path) / MB:,.1f}", f"{rss:,.0f}", f"{wall:.1f}", chunks, failure),
                  flush=True)
    except ChildFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
