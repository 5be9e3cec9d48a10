"""Every MCP tool called once the way a session would, for the access tests: what a caller may learn, in one dict."""

from __future__ import annotations

import json

from mcp import ClientSession


async def every_tool(session: ClientSession, hr_ids: list[str] = ()) -> dict[str, str]:
    """Every tool's answer, as the text and JSON a session would read; ``hr_ids``: ids to try fetching."""
    seen: dict[str, str] = {}

    async def call(label: str, tool: str, args: dict) -> dict:
        result = await session.call_tool(tool, args)
        seen[label] = result.content[0].text + json.dumps(result.structured_content or {})
        return result.structured_content or {}

    found = await call("search", "search", {"query": "weekly on-call stipend for engineers", "limit": 20})
    await call("search escalation", "search", {"query": "escalate to the incident commander", "limit": 20})
    await call("search filtered", "search", {"query": "stipend", "sources": ["hr"]})
    await call("sources", "list_sources", {})
    await call("check", "check_questions", {"questions": ["How much is the on-call stipend?"]})
    await call("gap", "report_gap", {"question": "Who approves stipends?", "missing": "the approver"})
    for hit in found.get("hits", []):
        await call(f"fetch {hit['id']}", "fetch", {"id": hit["id"], "neighbours": 5})
        await call(f"fetch {hit['doc_id']}", "fetch", {"id": hit["doc_id"]})
    for item in hr_ids:
        await call(f"fetch hidden {item}", "fetch", {"id": item})
    await call("fetch missing", "fetch", {"id": "d0000000000000000"})
    await call("fetch missing chunk", "fetch", {"id": "d0000000000000000:0"})
    seen["hr ids"] = " ".join(id_ for h in found.get("hits", []) if h["source"] == "hr"
                              for id_ in (h["id"], h["doc_id"]))
    return seen
