"""The MCP Inspector's CLI connects to `corpus serve --http` through the OAuth flow, as each of two people.

A real OpenID Connect provider on loopback (tests/oidc_idp: the npm oidc-provider, users hana in hr and omar
not) is corpus's [server.oidc]. For each person the Inspector's CLI (`mcp-inspector --cli`) calls `search` on
/mcp: it gets 401, discovers corpus's authorization server, registers itself (dynamic client registration),
starts its loopback callback listener and prints the authorization URL. The browser's part (the provider's
sign-in and consent pages, corpus's "Allow" page) is played by tests/oidc_idp.sign_in, which hands the final
redirect to the Inspector's listener; the Inspector exchanges the code (PKCE) and makes the call. A second call
reuses the Inspector's stored token without signing in. Printed step by step, then a table.

    npm install --prefix /tmp/inspector @modelcontextprotocol/inspector@2.12.0
    python bench/inspector_oauth.py [--inspector /tmp/inspector]

Needs node and `make tools` (tests/oidc_idp/node_modules); builds a two-file corpus in a temp folder (the
embedding model loads once for the ingest, once for the server).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http_load import cli, cli_ingest, stop_server  # noqa: E402
from tests.conftest import docs_source, free_port, wait_for_port, write_config  # noqa: E402
from tests.oidc_idp import USERS, running_idp, sign_in  # noqa: E402
from tests.test_access import HR, PUBLIC  # noqa: E402

HR_MARK = "450 EUR"  # only in the hr-only document
PUBLIC_MARK = "300 EUR"  # only in the public one
QUERY = "weekly on-call stipend for engineers"
PROMPT = "Please navigate to: "  # the Inspector CLI's line with the authorization URL (stderr)
SECRET = "inspector-bench-oidc-secret"
WAIT = 120  # seconds for the Inspector to print its URL or finish


def step(text: str) -> None:
    print(f"-> {text}", flush=True)


def inspector_command(inspector: Path, url: str, callback: str, *extra: str) -> list[str]:
    return [str(inspector / "node_modules" / ".bin" / "mcp-inspector"), "--cli", "--server-url", url,
            "--transport", "http", "--callback-url", callback, "--format", "json", "--method", "tools/call",
            "--tool-name", "search", "--tool-arg", f"query={QUERY}", "limit=5", *extra]


def run_inspector(command: list[str], home: Path, user: str | None, callback: str) -> tuple[int, str, str]:
    """Runs the Inspector CLI; when it prints an authorization URL, signs in as ``user`` and delivers the
    redirect to its listener. (exit code, stdout, stderr)."""
    # No terminal here: MCP_AUTO_OPEN_ENABLED allows the interactive flow, BROWSER=true makes "opening" a no-op.
    env = {**os.environ, "HOME": str(home), "MCP_AUTO_OPEN_ENABLED": "true", "BROWSER": "true", "NO_COLOR": "1",
           "MCP_INSPECTOR_SECRET_STORE": "file"}  # no OS keychain here: tokens in a file under HOME
    step("$ mcp-inspector " + shlex.join(command[1:]))
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []

    def read_stderr() -> None:
        for line in process.stderr:
            errors.append(line)
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    while user is not None:
        line = lines.get(timeout=WAIT)
        if line is None:
            break
        if PROMPT in line:
            authorize = line.split(PROMPT, 1)[1].strip()
            step(f"Inspector asks the browser to open {authorize[:110]}…")
            location = sign_in(None, authorize, user, stop_at=callback)
            step(f"signed in at the provider as {user}, allowed on corpus's page; redirect to "
                 f"{location.split('?')[0]}?code=…&state=…")
            delivered = httpx.get(location, timeout=30)
            step(f"the Inspector's listener answered {delivered.status_code}")
            break
    out, _ = process.communicate(timeout=WAIT)
    reader.join(timeout=5)
    return process.returncode, out, "".join(errors)


def sees(out: str) -> tuple[bool, bool] | None:
    """Whether the search result holds (the public passage, the hr-only passage); None when there is no result."""
    try:
        result = json.dumps(json.loads(out))
    except json.JSONDecodeError:
        return None
    return PUBLIC_MARK in result, HR_MARK in result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inspector", type=Path, default=Path("/tmp/inspector"),
                        help="the npm prefix @modelcontextprotocol/inspector is installed under")
    args = parser.parse_args()
    package = args.inspector / "node_modules" / "@modelcontextprotocol" / "inspector" / "package.json"
    if not package.exists():
        print(f"{package}: missing; npm install --prefix {args.inspector} @modelcontextprotocol/inspector")
        return 2
    step(f"MCP Inspector {json.loads(package.read_text())['version']}, node "
         f"{subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="inspector-oauth-") as tmp:
        folder = Path(tmp)
        for name, text in (("wiki", PUBLIC), ("hr", HR)):
            (folder / name).mkdir()
            (folder / name / f"{name}.md").write_text(text)
        port = free_port()
        public_url = f"http://127.0.0.1:{port}"
        with running_idp([public_url + "/oauth/callback"]) as idp:
            step(f"OpenID Connect provider at {idp.issuer}; users {', '.join(sorted(USERS))}")
            config = write_config(
                folder, docs_source("wiki", folder / "wiki") + docs_source("hr", folder / "hr", access=["hr"]),
                extra=f'[server]\nport = {port}\npublic_url = "{public_url}"\n[server.oidc]\n'
                      f'issuer = "{idp.issuer}"\nclient_id = "{idp.client_id}"\n'
                      'client_secret_env = "CORPUS_OIDC_SECRET"\naccess_token_seconds = 600\n')
            os.environ["CORPUS_OIDC_SECRET"] = idp.client_secret
            step(f"corpus ingest ({' '.join(cli(config, 'ingest')[2:])})")
            failed = cli_ingest(config)
            if failed:
                print(failed)
                return 1
            url = public_url + "/mcp"
            server = serve(config, port, folder / "serve.log")
            try:
                refused = httpx.post(url, json={})
                step(f"corpus serve --http at {url}: {refused.status_code} without a token, "
                     f"WWW-Authenticate: {refused.headers.get('www-authenticate')}")
                for user in sorted(USERS):
                    home = folder / f"home-{user}"
                    home.mkdir()
                    callback = f"http://127.0.0.1:{free_port()}/oauth/callback"
                    for attempt, who in (("sign-in", user), ("stored token", None)):
                        extra = ("--stored-auth-only",) if who is None else ()
                        code, out, err = run_inspector(inspector_command(args.inspector, url, callback, *extra),
                                                       home, who, callback)
                        seen = sees(out)
                        for line in err.splitlines():
                            if line.strip() and PROMPT not in line and not line.startswith("[mcp-inspector]"):
                                print(f"   inspector: {line.strip()}")
                        step(f"{user} ({attempt}): exit {code}; (public, hr) passage in results: {seen}")
                        if code != 0 or seen is None:
                            print(err[-2000:] or out[-2000:])
                        rows.append((user, attempt, code, seen))
            finally:
                stop_server(server)
    print("\n| person | call | Inspector exit | public passage | hr passage |\n|---|---|---:|---|---|")
    for user, attempt, code, seen in rows:
        print(f"| {user} | {attempt} | {code} | {' | '.join(map(str, seen or ('-', '-')))} |")
    expected = all(code == 0 and seen == (True, user == "hana") for user, _, code, seen in rows)
    print("\nOK: the Inspector connected through OAuth as each person, with their access" if expected
          else "\nNOT OK: see above")
    return 0 if expected else 1


def serve(config: Path, port: int, log: Path) -> subprocess.Popen:
    """`corpus serve --http` on the port its public_url names (its first search loads the model)."""
    with log.open("w") as out:
        server = subprocess.Popen(cli(config, "serve", "--http"), cwd=config.parent, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
    except TimeoutError:
        stop_server(server)
        print(log.read_text()[-2000:])
        raise
    return server


if __name__ == "__main__":
    sys.exit(main())
