"""[server.oidc], public_url and [[server.groups]] fail fast with one line naming the key, before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import load_config
from corpus.errors import ConfigError
from server.http import auth_for

OIDC = '[server.oidc]\nissuer = "https://id.example.com"\nclient_id = "kb"\nclient_secret_env = "KB_OIDC_SECRET"\n'


def _load(tmp_path: Path, text: str):
    path = tmp_path / "corpus.toml"
    path.write_text(text)
    return load_config(path)


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_full_sign_in_config_loads(tmp_path):
    config = _load(tmp_path, '[server]\npublic_url = "https://kb.example.com/"\n' + OIDC +
                   '[[server.groups]]\ndomain = "Example.com"\ngroups = ["staff"]\n'
                   '[[server.groups]]\nemails = ["Ana@example.com"]\ngroups = ["hr"]\n')
    server = config.server
    assert server.public_url == "https://kb.example.com"
    assert server.oidc.scopes == ("openid", "email", "profile") and server.oidc.groups_claim == "groups"
    domain, emails = server.groups
    assert domain.matches("bo@EXAMPLE.com") and not domain.matches("bo@example.com.evil.org")
    assert emails.matches("ana@Example.com") and not emails.matches("bo@example.com")


def test_sign_in_without_public_url(tmp_path):
    message = _refused(tmp_path, OIDC)
    assert "corpus.toml:1: server.oidc: needs [server] public_url" in message


def test_http_public_url_beyond_loopback(tmp_path):
    message = _refused(tmp_path, '[server]\npublic_url = "http://kb.example.com"\n' + OIDC)
    assert "corpus.toml:2: server.public_url:" in message and "must use https" in message
    assert _load(tmp_path, '[server]\npublic_url = "http://127.0.0.1:8765"\n' + OIDC).server.public_url


def test_http_issuer_beyond_loopback(tmp_path):
    message = _refused(tmp_path, '[server]\npublic_url = "https://kb.example.com"\n' +
                       OIDC.replace("https://id.example.com", "http://id.example.com"))
    assert "server.oidc.issuer:" in message and "must use https" in message


def test_a_rule_with_both_domain_and_emails(tmp_path):
    message = _refused(tmp_path, '[server]\npublic_url = "https://kb.example.com"\n' + OIDC +
                       '[[server.groups]]\ndomain = "example.com"\nemails = ["a@example.com"]\ngroups = ["hr"]\n')
    assert "corpus.toml:7: server.groups[0]:" in message and "exactly one of domain or emails" in message


def test_a_misspelt_key_is_suggested(tmp_path):
    message = _refused(tmp_path, '[server]\npublic_url = "https://kb.example.com"\n' +
                       OIDC.replace("client_id", "clientid"))
    assert "unknown key `clientid` (did you mean `client_id`?)" in message


def test_an_unset_secret_variable_stops_the_server(tmp_path, monkeypatch):
    from server.oidc import Logins

    config = _load(tmp_path, '[server]\npublic_url = "https://kb.example.com"\n' + OIDC)
    monkeypatch.delenv("KB_OIDC_SECRET", raising=False)
    with pytest.raises(ConfigError) as err:
        Logins(config.server.oidc, config.server.groups, config.server.public_url)
    assert str(err.value) == "server.oidc.client_secret_env: set $KB_OIDC_SECRET to the client secret the " \
                             "provider gave corpus"


def test_sign_in_lets_the_server_listen_beyond_loopback_without_tokens(tmp_path):
    config = _load(tmp_path, '[server]\npublic_url = "https://kb.example.com"\n' + OIDC)
    assert auth_for(config.server, "0.0.0.0", 8765) == (None, None)
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0"):
        auth_for(_load(tmp_path, "").server, "0.0.0.0", 8765)


@pytest.mark.parametrize(("host", "origin", "passes"), [
    ("kb.example.com", "https://kb.example.com", True),  # a proxy on 443 passes the name without a port
    ("kb.example.com:443", None, True),
    ("evil.example.net", None, False),
    ("kb.example.com", "https://evil.example.net", False),
])
def test_public_url_passes_the_host_and_origin_checks(tmp_path, host, origin, passes):
    import anyio
    from mcp.server.transport_security import TransportSecurityMiddleware
    from starlette.requests import Request

    from server.http import transport_security

    config = _load(tmp_path, '[server]\npublic_url = "https://kb.example.com"\n' + OIDC)
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
    request = Request({"type": "http", "method": "POST", "path": "/mcp", "headers": headers})
    checks = TransportSecurityMiddleware(transport_security(config.server, "127.0.0.1"))
    refused = anyio.run(lambda: checks.validate_request(request, is_post=False))
    assert (refused is None) is passes
