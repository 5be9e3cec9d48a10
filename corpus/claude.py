"""Claude for the steps that need judgement, and an honest fallback when it is not there.

Callers ask through ``Claude.ask``; ``None`` means "decide offline", and ``mode`` says which mode
ran and why, for the output. The SDK retries 429, 5xx and dropped connections with backoff; calls
run with bounded concurrency; a per-run token budget stops spending; a refused key, a model that
does not exist or an outage switches Claude off for the rest of the run instead of failing it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TypeVar

from corpus.config import ClaudeSettings

T = TypeVar("T")
R = TypeVar("R")

FAILURES_BEFORE_GIVING_UP = 3  # consecutive failed calls (after the SDK's own retries) mean an outage


@dataclass
class Usage:
    calls: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens + self.output_tokens

    def cost(self, settings: ClaudeSettings) -> float:
        """USD at the configured prices; cache writes cost 1.25x and cache reads 0.1x an input token."""
        weighted = self.input_tokens + 1.25 * self.cache_write_tokens + 0.1 * self.cache_read_tokens
        return (weighted * settings.input_price + self.output_tokens * settings.output_price) / 1e6

    def as_dict(self) -> dict:
        return asdict(self)


class Claude:
    def __init__(self, settings: ClaudeSettings, environ: Mapping[str, str] = os.environ, offline: str | None = None):
        """``offline`` names why Claude must not be used even with a key (a command's --offline)."""
        self.settings = settings
        self.usage = Usage()
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._failures_in_a_row = 0
        key = "" if offline else environ.get(settings.api_key_env, "").strip()
        self._off: str | None = offline or (None if key else f"no API key: ${settings.api_key_env} is not set")
        self._client = None
        if key:
            import anthropic

            self._client = anthropic.Anthropic(api_key=key, base_url=settings.base_url,
                                               max_retries=settings.max_retries, timeout=settings.timeout)

    @property
    def available(self) -> bool:
        return self._off is None

    @property
    def mode(self) -> str:
        """One line for the output: which mode ran, and why when it is not Claude."""
        if self._client is None:
            return f"offline ({self._off})"
        line = f"Claude ({self.settings.model})"
        if self.usage.failed:
            line += f"; {self.usage.failed} call(s) fell back to offline: {self.problems[0]}"
        if self._off:
            line += f"; then offline: {self._off}"
        return line

    def ask(self, prompt: str, *, system: str = "", cached: str = "", max_tokens: int = 400) -> str | None:
        """Claude's text reply, or None when the caller should decide offline.

        ``cached`` is a long shared prefix (a whole document) sent with prompt caching, so the many
        calls about one document pay for it once.
        """
        import anthropic

        with self._lock:
            if self._off:
                return None
            if self.usage.total >= self.settings.token_budget:
                budget = self.settings.token_budget
                self._off = f"the token budget of {budget:,} per run is spent ([claude] token_budget)"
                return None
        blocks = [{"type": "text", "text": system}] if system else []
        if cached:
            blocks.append({"type": "text", "text": cached, "cache_control": {"type": "ephemeral"}})
        try:
            response = self._client.messages.create(
                model=self.settings.model, max_tokens=max_tokens, system=blocks or anthropic.omit,
                messages=[{"role": "user", "content": prompt}],
            )
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
            self._stop(f"the key in ${self.settings.api_key_env} was refused ({exc.status_code}); fix or unset it")
            return None
        except anthropic.NotFoundError:
            self._stop(f"model {self.settings.model!r} was not found; check [claude] model")
            return None
        except anthropic.APIError as exc:
            self._failed(_describe(exc))
            return None
        text = "".join(getattr(block, "text", "") for block in response.content or [])
        with self._lock:
            self._failures_in_a_row = 0
            self.usage.calls += 1
            usage = response.usage
            self.usage.input_tokens += usage.input_tokens or 0
            self.usage.output_tokens += usage.output_tokens or 0
            self.usage.cache_write_tokens += getattr(usage, "cache_creation_input_tokens", None) or 0
            self.usage.cache_read_tokens += getattr(usage, "cache_read_input_tokens", None) or 0
        return text

    def ask_json(self, prompt: str, **kwargs) -> dict | None:
        """A reply that must be one JSON object; anything else is a malformed reply and falls back."""
        text = self.ask(prompt, **kwargs)
        if text is None:
            return None
        found = re.search(r"\{.*\}", text, re.S)
        try:
            value = json.loads(found.group(0)) if found else None
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self._failed(f"malformed reply (expected a JSON object): {text[:80]!r}")
            return None
        return value

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` with at most ``max_concurrency`` calls in flight, results in order."""
        items = list(items)
        if len(items) <= 1 or not self.available:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency, thread_name_prefix="claude") as pool:
            return list(pool.map(fn, items))

    def summary(self) -> str:
        """Calls, tokens and estimated cost, for run summaries."""
        u = self.usage
        return (f"{u.calls} call(s), {u.input_tokens:,} input tokens (+{u.cache_write_tokens:,} cache write, "
                f"{u.cache_read_tokens:,} cache read), {u.output_tokens:,} output tokens, "
                f"≈ ${u.cost(self.settings):.4f}")

    def _failed(self, problem: str) -> None:
        with self._lock:
            self.usage.failed += 1
            if problem not in self.problems:
                self.problems.append(problem)
            self._failures_in_a_row += 1
            if self._failures_in_a_row >= FAILURES_BEFORE_GIVING_UP and not self._off:
                self._off = f"{FAILURES_BEFORE_GIVING_UP} calls in a row failed ({problem})"

    def _stop(self, reason: str) -> None:
        with self._lock:
            self.usage.failed += 1
            if reason not in self.problems:
                self.problems.append(reason)
            self._off = reason


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    if status is not None:
        return f"HTTP {status} after retries"
    return f"{type(exc).__name__}: {exc}"[:120]
