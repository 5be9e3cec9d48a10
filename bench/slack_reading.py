"""Slack as a reader sees it (issue 11), on the real houstondatavis export: the two channel questions answered
by the channels' about documents, and how much `fetch` with neighbours reads around a Slack hit.

For each question: the top hit's title, citation and text. For each read-on query, the top Slack hit read with
``neighbours`` 1 and 2: the characters of its own document's chunks in that window (all `fetch` returned before it
crossed document boundaries) and what it returns now, with how many documents that spans.

    python bench/slack_reading.py [--export ../shared/data/slack/houstondatavis] [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import corpus  # noqa: F401  (offline environment before any heavy import)
from connectors import load_config
from ingest.embedder import Embedder
from ingest.pipeline import ingest
from server.fetch import _join
from server.search import Searcher

QUESTIONS = ("what did #general's topic say about the next Data Jam in January 2016?",
             "what was #meetup- called before, and who renamed it?")
READ_ON = ("who is presenting at the next meetup?", "where can I find the data for the data jam?",
           "d3 word cloud tools")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data" / "slack" / "houstondatavis")
    parser.add_argument("--keep", type=Path, help="store folder to keep (default: a temporary one)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="slack-reading-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.toml").write_text(f'[corpus]\npath = "store"\n\n[[sources]]\nname = "hdv"\nkind = "slack"\n'
                                        f'path = "{args.export}"\nworkspace_url = "https://houstondatavis.slack.com"\n')
    config = load_config(folder / "corpus.toml")
    embedder = Embedder(config.embedding.model, config.embedding.device)
    ingest(config, embedder=embedder)
    searcher = Searcher(config, embedder)
    for question in QUESTIONS:
        hit = searcher.search(question, limit=1)[0]
        print(f"\nQ: {question}\n1. {hit.title} · {hit.citation}\n{hit.text}")
    print("\n| query | hit | n | before: its document's chunks | now: characters (documents) |")
    print("|---|---|---:|---:|---:|")
    for query in READ_ON:
        hit = next(h for h in searcher.search(query, limit=10) if not h.title.startswith("About "))
        ordinal = int(hit.id.rsplit(":", 1)[1])
        for n in (1, 2):
            text = searcher.fetch(hit.id, neighbours=n).text
            runs = max(1, text.count("\n\n[") + 1) if text.startswith("[") else 1
            with searcher.replica.reading() as snapshot:
                own = snapshot.store.collection.get(ids=[f"{hit.doc_id}:{i}" for i in
                                                         range(max(0, ordinal - n), ordinal + n + 1)])
            before = len(_join([t for _, t in sorted(zip(own["ids"], own["documents"], strict=True),
                                                     key=lambda r: int(r[0].rsplit(":", 1)[1]))]))
            print(f"| {query} | {hit.id} | {n} | {before:,} | {len(text):,} ({runs}) |")


if __name__ == "__main__":
    main()
