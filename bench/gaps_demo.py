"""`corpus gaps` on a real log: about fifty newcomer questions asked of the three real sources through the MCP server.

Four people (four HTTP tokens, so four callers) ask questions through `corpus serve --http` with the real MCP
client, as a Claude session would: each question is searched; when the verdict is likely the first hit is
fetched (read on), and when it is unlikely the session reports the gap with ``report_gap`` (as the server's
instructions ask). About a third of the questions are about things the sources never mention (parking, pets,
gym and wellness, relocation and visas, a PowerShell release that does not exist). Then `corpus gaps` runs on
the log, offline, and its table is printed; ``--json`` output is written beside the store as gaps.json.

    python bench/gaps_demo.py --keep DIR

``--keep DIR`` holds a store of the three sources built by bench/questions_eval.py (or builds one there). The
demo works on a copy in DIR-demo (its question log is erased first), never on DIR itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.mcp_store import ensure_store  # noqa: E402
from bench.questions_eval import config_text  # noqa: E402
from bench.sessions import corpus_command  # noqa: E402
from tests.conftest import free_port, wait_for_port  # noqa: E402

PEOPLE = ("ana", "ben", "chloe", "dev")
TOKENS = {name: f"{name}-demo-token-0123456789" for name in PEOPLE}

# (who asks, the question, what a session reports missing when the corpus does not answer)
ASKED = [
    ("ana", "How do I get a PIV card on my first day?", "how to get a PIV card"),
    ("ana", "What do I put in Tock for a week of vacation?", "Tock codes for leave"),
    ("ana", "How long do I have to pick my health insurance?", "benefits enrollment deadline"),
    ("ana", "Is there parking at the GSA building in DC?", "parking at the DC office"),
    ("ana", "Can I bring my dog to the office?", "a pet policy for the office"),
    ("ana", "Where do I park my bike at the office?", "bike parking at the office"),
    ("ana", "Is there a gym in the building?", "gym or fitness facilities"),
    ("ana", "How do I book travel for a client visit?", "how to book travel"),
    ("ana", "What laptop will I get?", "which laptop new hires get"),
    ("ana", "When will PowerShell 8 be released?", "the PowerShell 8 release date"),
    ("ana", "Which Slack channels should a new hire join?", "Slack channels for new hires"),
    ("ana", "Do you help with relocation costs when I move to DC?", "relocation support"),
    ("ben", "Who do I ask for help with Tock?", "Tock support"),
    ("ben", "How do I request annual leave?", "how to request leave"),
    ("ben", "Does the company reimburse a gym membership?", "gym or wellness reimbursement"),
    ("ben", "Is there a wellness allowance for yoga or sports?", "a wellness allowance"),
    ("ben", "What did the PowerShell community call decide about DSC v3?", "DSC v3 decisions"),
    ("ben", "Is there a garage where I can park my car?", "car parking"),
    ("ben", "Do we get a commuter or parking subsidy?", "parking or commuter subsidy"),
    ("ben", "Can I work remotely from another country?", "working abroad"),
    ("ben", "What is the dress code?", "a dress code"),
    ("ben", "Are pets allowed at work?", "a pet policy"),
    ("ben", "How do I sign commits with a GPG key?", "commit signing"),
    ("ben", "Will PowerShell 8 run Python scripts natively?", "PowerShell 8 features"),
    ("chloe", "How early should I start offboarding when I leave?", "offboarding steps"),
    ("chloe", "What happens to my unused vacation days when I quit?", "leave payout"),
    ("chloe", "Does the company sponsor work visas?", "visa sponsorship"),
    ("chloe", "Is there a relocation package for international hires?", "a relocation package"),
    ("chloe", "Who pays for my visa appointment?", "visa costs"),
    ("chloe", "Which open source dataviz tools did the Houston meetup cover?", "meetup tools"),
    ("chloe", "Is there a fitness subsidy or company sports team?", "fitness and sports benefits"),
    ("chloe", "How do I set up my government email?", "email setup"),
    ("chloe", "What is the 18F approach to user research?", "user research approach"),
    ("chloe", "Can I bring my cat to work on Fridays?", "a pet policy"),
    ("chloe", "When is the PowerShell 8 preview coming out?", "the PowerShell 8 preview"),
    ("chloe", "How do I get reimbursed for travel expenses?", "travel reimbursement"),
    ("dev", "What are the rules for using Slack at TTS?", "Slack rules"),
    ("dev", "Where can I park my car when I come to the office?", "car parking"),
    ("dev", "How do I join the PowerShell community call?", "joining the community call"),
    ("dev", "Do you pay for moving costs from abroad?", "moving costs"),
    ("dev", "How do I change my direct deposit?", "direct deposit"),
    ("dev", "Is there an on-site gym or fitness center?", "an on-site gym"),
    ("dev", "What is the policy on dogs in the office?", "a pet policy"),
    ("dev", "Who approves my timesheet?", "timesheet approval"),
    ("dev", "Did the Houston datavis meetup have a Slack channel for feedback?", "feedback channel"),
    ("dev", "How do I get access to GitHub at 18F?", "GitHub access"),
    ("dev", "What is the telework policy?", "the telework policy"),
    ("dev", "Can my family come with me on a work permit?", "family visas"),
    ("dev", "Does PowerShell 8 drop Windows PowerShell compatibility?", "PowerShell 8 compatibility"),
    ("dev", "How do I report a lost laptop?", "reporting a lost laptop"),
]


def demo_config(store_config: str) -> str:
    tokens = "".join(f'[[server.tokens]]\nname = "{n}"\nenv = "CORPUS_DEMO_TOKEN_{n.upper()}"\n' for n in PEOPLE)
    return store_config.replace("[corpus]", f"[server]\nidle = 60\n{tokens}\n[corpus]", 1)


async def ask(url: str) -> list[tuple[str, str, str]]:
    """Each person's questions in one session each; what happened to each question."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    outcomes = []
    for person in PEOPLE:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {TOKENS[person]}"}) as http, \
                streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for who, question, missing in ASKED:
                if who != person:
                    continue
                found = (await session.call_tool("search", {"query": question, "limit": 5})).structured_content
                verdict = found["answer_in_corpus"]
                if verdict == "likely" and found["hits"]:
                    await session.call_tool("fetch", {"id": found["hits"][0]["id"]})
                    done = "read on"
                elif verdict == "unlikely":
                    await session.call_tool("report_gap", {"question": question, "missing": missing})
                    done = "reported a gap"
                else:
                    done = "nothing more"
                outcomes.append((person, question, f"{verdict}; {done}"))
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, required=True, help="folder of the three-source store")
    args = parser.parse_args()
    ensure_store(args.keep, config_text())
    folder = args.keep.with_name(args.keep.name + "-demo")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(args.keep / "store", folder / "store", ignore=shutil.ignore_patterns("reader-*", "questions.*"))
    config = folder / "corpus.toml"
    config.write_text(demo_config(config_text()))

    port = free_port()
    env = {**os.environ, **{f"CORPUS_DEMO_TOKEN_{n.upper()}": v for n, v in TOKENS.items()}}
    server = subprocess.Popen([*corpus_command(), "--config", str(config), "serve", "--http", "--port", str(port)],
                              env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, seconds=180)
        outcomes = asyncio.run(ask(f"http://127.0.0.1:{port}/mcp"))
    finally:
        server.terminate()
        server.wait(timeout=60)  # a graceful stop: the log's last records are written at exit
    print(f"{len(outcomes)} questions asked by {len(PEOPLE)} people through the MCP server over HTTP")
    for person, question, done in outcomes:
        print(f"  {person:<6} {done:<28} {question}")
    print()
    gaps = subprocess.run([*corpus_command(), "--config", str(config), "gaps", "--since", "1d", "--offline"],
                          cwd=folder, capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})
    print(gaps.stdout, gaps.stderr, sep="")
    with open(folder / "gaps.json", "w") as out:
        subprocess.run([*corpus_command(), "--config", str(config), "gaps", "--since", "1d", "--offline", "--json"],
                       cwd=folder, stdout=out, check=True)
    print(f"JSON: {folder / 'gaps.json'}")
    return gaps.returncode


if __name__ == "__main__":
    sys.exit(main())
