"""``kind = "beir"``: the corpus of a BEIR-format benchmark folder, for `corpus eval`.

A BEIR folder holds ``corpus.jsonl`` (or ``corpus.jsonl.gz``) with one ``{"_id", "title", "text"}``
record a line, plus queries and qrels that only the evaluation reads. Each corpus line is one
document; its stamp is the SHA-1 of the raw line, so re-ingesting an unchanged corpus reads nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

from connectors.base import ConnectorContext
from corpus.config import SourceSettings
from corpus.errors import ConfigError, ItemError
from corpus.records import Block, Citation, Document, Item, document_id

CORPUS_FILES = ("corpus.jsonl", "corpus.jsonl.gz")


class Settings(SourceSettings):
    cites_files: ClassVar[bool] = False  # records are cited as beir:<folder>/<id>

    kind: Literal["beir"]


def connector(settings: Settings, context: ConnectorContext | None = None) -> BeirConnector:
    return BeirConnector(settings)


def corpus_file(folder: Path) -> Path:
    """The folder's corpus.jsonl, or corpus.jsonl.gz."""
    for name in CORPUS_FILES:
        if (folder / name).is_file():
            return folder / name
    raise ConfigError(f"{folder}: not a BEIR folder (no {' or '.join(CORPUS_FILES)})")


def read_lines(path: Path) -> Iterator[bytes]:
    """The non-blank raw lines of a .jsonl or .jsonl.gz file, streamed."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for line in f:
            line = line.strip()
            if line:
                yield line


class BeirConnector:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.folder = settings.path
        # _id -> (title, text), filled while listing so load() does not reread the file. BEIR corpora are
        # benchmark-sized (SciFact: 5k abstracts, a few MB), so holding them in memory is fine.
        self._records: dict[str, tuple[str, str]] = {}

    def items(self) -> Iterator[Item]:
        path = corpus_file(self.folder)
        self._records = records = {}
        for number, raw in enumerate(read_lines(path), start=1):
            try:
                record = json.loads(raw)
                native_id = str(record["_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{number}: not a BEIR corpus record ({exc})") from None
            if native_id in records:
                continue  # a repeated _id: the first line wins
            records[native_id] = (str(record.get("title") or ""), str(record.get("text") or ""))
            yield Item(native_id=native_id, stamp=hashlib.sha1(raw).hexdigest(), path=path)

    def digest(self, item: Item) -> str:
        return item.stamp  # the stamp already is a hash of the record's bytes

    def load(self, item: Item) -> Document:
        if item.native_id not in self._records:
            for _ in self.items():  # load() without a listing first: read the file once
                pass
        try:
            title, text = self._records[item.native_id]
        except KeyError:
            raise ItemError("no longer in the corpus file") from None
        if not text.strip() and not title.strip():
            raise ItemError("empty record (no title, no text)")
        uri = f"beir:{self.folder.name}/{item.native_id}"
        return Document(
            id=document_id(self.settings.name, item.native_id),
            source=self.settings.name,
            kind="beir",
            native_id=item.native_id,
            title=title.strip(),
            citation=Citation(uri=uri, label=uri),
            blocks=(Block(text.strip() or title.strip()),),
            digest=item.stamp,
            access=self.settings.access,
        )
