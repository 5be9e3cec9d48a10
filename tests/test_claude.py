"""The Claude client through the real `anthropic` SDK against a local Messages API stub."""

from __future__ import annotations

import itertools

from corpus.claude import Claude
from corpus.config import ClaudeSettings
from tests.anthropic_stub import KEY, Fail, MessagesStub


def claude_for(stub: MessagesStub, key: str = KEY, **options) -> Claude:
    settings = ClaudeSettings(base_url=stub.url, max_retries=options.pop("max_retries", 2), **options)
    return Claude(settings, environ={"ANTHROPIC_API_KEY": key})


def test_without_a_key_nothing_is_sent_and_the_mode_says_offline():
    claude = Claude(ClaudeSettings(), environ={})
    assert claude.ask("anything") is None
    assert not claude.available
    assert claude.mode == "offline (no API key: $ANTHROPIC_API_KEY is not set)"


def test_a_reply_comes_back_with_usage_counted_and_the_key_sent_as_bearer():
    with MessagesStub(lambda body: "Paris") as stub:
        claude = claude_for(stub)
        assert claude.ask("capital of France?", system="Be brief.", cached="a long document " * 50) == "Paris"
        assert claude.ask("again?", cached="a long document " * 50) == "Paris"
    assert stub.headers[0]["Authorization"] == f"Bearer {KEY}"
    first = stub.requests[0]
    assert first["model"] == "claude-haiku-4-5"
    assert first["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert claude.usage.calls == 2
    assert claude.usage.cache_write_tokens == 150 and claude.usage.cache_read_tokens == 150
    assert claude.mode == "Claude (claude-haiku-4-5)"
    assert "2 call(s)" in claude.summary()


def test_a_429_is_retried_and_then_succeeds():
    answers = itertools.chain([Fail(429, "slow down")], itertools.repeat("ok"))
    with MessagesStub(lambda body: next(answers)) as stub:
        claude = claude_for(stub)
        assert claude.ask("hello") == "ok"
    assert len(stub.requests) == 2
    assert claude.usage.failed == 0 and claude.available


def test_a_500_that_persists_falls_back_and_says_why():
    with MessagesStub(lambda body: Fail(500)) as stub:
        claude = claude_for(stub, max_retries=1)
        assert claude.ask("hello") is None
    assert len(stub.requests) == 2  # the first try and one retry
    assert claude.usage.failed == 1
    assert "HTTP 500 after retries" in claude.mode


def test_repeated_failures_switch_claude_off_for_the_rest_of_the_run():
    with MessagesStub(lambda body: Fail(500)) as stub:
        claude = claude_for(stub, max_retries=0)
        for _ in range(5):
            claude.ask("hello")
    assert len(stub.requests) == 3
    assert not claude.available and "3 calls in a row failed" in claude.mode


def test_a_refused_key_stops_calls_with_a_clear_message():
    with MessagesStub(lambda body: "never") as stub:
        claude = claude_for(stub, key="sk-ant-wrong")
        assert claude.ask("hello") is None
        assert claude.ask("hello") is None
    assert len(stub.requests) == 1
    assert "the key in $ANTHROPIC_API_KEY was refused (401)" in claude.mode


def test_a_malformed_reply_is_not_trusted():
    with MessagesStub(lambda body: "I think the answer is yes") as stub:
        claude = claude_for(stub)
        assert claude.ask_json("answer in JSON") is None
    assert "malformed reply" in claude.mode


def test_the_token_budget_stops_spending():
    with MessagesStub(lambda body: "word " * 30) as stub:
        claude = claude_for(stub, token_budget=30)
        assert claude.ask("one two three") is not None
        assert claude.ask("one two three") is None
    assert len(stub.requests) == 1
    assert "token budget of 30" in claude.mode


def test_calls_run_concurrently_but_bounded():
    import threading
    import time

    inflight, peak, lock = [0], [0], threading.Lock()

    def slow(body):
        with lock:
            inflight[0] += 1
            peak[0] = max(peak[0], inflight[0])
        time.sleep(0.2)
        with lock:
            inflight[0] -= 1
        return "ok"

    with MessagesStub(slow) as stub:
        claude = claude_for(stub, max_concurrency=3)
        replies = claude.map(lambda n: claude.ask(f"q{n}"), range(9))
    assert replies == ["ok"] * 9
    assert peak[0] == 3
