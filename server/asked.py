"""Who asked: the hook by which searches, fetches and reported gaps reach the question log.

A search names its asker (``Asker``) only where a person or a session asked it: `corpus search`, the MCP
tools, `corpus check`. Internal searches (check's per-retriever lookups, `corpus gaps` re-asking old
questions, `corpus eval`) pass none and are not logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from corpus.config import Config
from server.relevance import Found
from store.questionlog import QuestionLog

LOCAL = "local"  # the caller of a CLI command or a stdio session: whoever owns the store on this machine


@dataclass(frozen=True)
class Asker:
    caller: str = LOCAL  # an HTTP token's name, else LOCAL; never a token value
    session: str = ""  # an MCP session, to link a search to the fetches after it


class QuestionHook:
    """The store's question log, or nothing when ``[feedback] log = false``."""

    def __init__(self, config: Config):
        self.log = QuestionLog(config.store_path, config.feedback.retention_days) if config.feedback.log else None

    def __call__(self, asker: Asker | None, query: str, found: Found) -> None:
        """Queue the search for the log (returns at once)."""
        if asker is None or self.log is None:
            return
        top = max((hit.relevance for hit in found.hits), default=None)
        self.log.record(query, asker.caller, verdict=found.answer_in_corpus, top_relevance=top,
                        session=asker.session, hits=[hit.id for hit in found.hits])

    def fetched(self, asker: Asker, item_id: str) -> None:
        if self.log is not None:
            self.log.fetched(asker.session, item_id)

    def gap(self, asker: Asker, question: str, missing: str, time: datetime | None = None) -> bool:
        """Record a gap a session reported; False when the log is off."""
        if self.log is None:
            return False
        self.log.record(question, asker.caller, kind="gap", missing=missing, session=asker.session, time=time)
        return True
