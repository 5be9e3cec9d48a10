"""What Claude's enrichment of chunks costs per 1,000 chunks: contextual sentences, likely questions, or both.

The API is not reachable from this machine, so the cost is estimated from the real chunks of the development
store (`bench/questions_eval.py`'s three sources, built or reused with ``--keep``) and the real prompts of
`ingest/contextualize.py`, token counts taken with the embedding model's tokenizer (WordPiece: within about 15%
of Claude's). Each chunk is one call: the system prompt and its document as a cached prefix, the prompt with the
chunk as the user turn. A document's prefix is written to the cache by its first chunk (1.25x an input token)
and read by the rest (0.1x) when it reaches the model's minimum cacheable length (``--cache-min``, 4,096 for
Claude Haiku 4.5); a shorter one is paid in full by each chunk. Replies are taken at ``--context-tokens`` for the
sentences and ``--question-tokens`` for the questions. Prices are ``[claude]``'s defaults (Haiku 4.5).

    python bench/enrichment_cost.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.mcp_store import ensure_store  # noqa: E402
from bench.questions_eval import SOURCES, config_text  # noqa: E402
from bench.sessions import sources_missing  # noqa: E402
from corpus.config import ClaudeSettings  # noqa: E402
from ingest.contextualize import DOCUMENT_CHARS, PROMPTS, SYSTEM  # noqa: E402

MODES = {"context": (True, False), "likely questions": (False, True), "both": (True, True)}


def documents(store: Path) -> dict[str, tuple[str, list[str]]]:
    """Per document: its source and its chunks' texts (the header the chunker adds left out), in order."""
    with sqlite3.connect(store / "manifest.sqlite") as db:
        rows = db.execute("SELECT m.doc_id, m.source, t.text FROM chunk_meta m JOIN chunk_text t ON t.rowid = m.rowid "
                          "ORDER BY m.rowid").fetchall()
    found: dict[str, tuple[str, list[str]]] = {}
    for doc_id, source, text in rows:
        found.setdefault(doc_id, (source, []))[1].append(text.split("\n", 1)[-1])
    return found


def cost(docs: dict[str, tuple[str, list[str]]], count, wants: tuple[bool, bool], reply: int,
         cache_min: int, settings: ClaudeSettings) -> dict[str, tuple[int, float]]:
    """Per source (and "all"): chunks and USD."""
    prompt = PROMPTS[wants]
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for source, chunks in docs.values():
        document = "<document>\n" + "\n\n".join(chunks)[:DOCUMENT_CHARS] + "\n</document>"
        prefix = sum(count([SYSTEM, document]))
        asked = count([prompt.format(chunk=chunk) for chunk in chunks])
        if prefix >= cache_min:
            weighted = prefix * 1.25 + prefix * 0.1 * (len(chunks) - 1) + sum(asked)
        else:
            weighted = (prefix * len(chunks)) + sum(asked)
        usd = (weighted * settings.input_price + reply * len(chunks) * settings.output_price) / 1e6
        for key in (source, "all"):
            totals[key][0] += len(chunks)
            totals[key][1] += usd
    return {key: (int(n), usd) for key, (n, usd) in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build the store in (or reuse it from) this folder")
    parser.add_argument("--cache-min", type=int, default=4096, help="the model's minimum cacheable prefix, tokens")
    parser.add_argument("--context-tokens", type=int, default=50, help="a reply's sentences, tokens")
    parser.add_argument("--question-tokens", type=int, default=45, help="a reply's three questions, tokens")
    args = parser.parse_args()
    if sources_missing(SOURCES):
        return 2
    from connectors import load_config
    from ingest.embedder import Embedder

    folder = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="corpus-cost-"))
    try:
        config, built = ensure_store(folder, config_text())
        docs = documents(folder / "store")
        embedding = load_config(config).embedding
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    settings = ClaudeSettings()
    count = Embedder(embedding.model, embedding.device).count_tokens
    print(f"\nClaude enrichment, estimated USD per 1,000 chunks ({settings.model} at ${settings.input_price}/M input, "
          f"${settings.output_price}/M output; store {built}; cache minimum {args.cache_min} tokens)\n")
    sources = [*SOURCES, "all"]
    print(f"{'mode':<18}" + "".join(f"{name:>12}" for name in sources))
    for name, wants in MODES.items():
        reply = args.context_tokens * wants[0] + args.question_tokens * wants[1]
        per = cost(docs, count, wants, reply, args.cache_min, settings)
        print(f"{name:<18}" + "".join(f"{1000 * per[s][1] / per[s][0]:>12.2f}" if per.get(s) else f"{'-':>12}"
                                      for s in sources))
    chunks = {s: n for s, (n, _) in cost(docs, count, (True, False), 0, args.cache_min, settings).items()}
    print(f"{'chunks':<18}" + "".join(f"{chunks.get(s, 0):>12,}" for s in sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
