"""The test identity provider itself (tests/oidc_idp.py): a real OpenID Connect sign-in with Authlib as the relying
party, so the OAuth tests stand on a harness that is known to work."""

from __future__ import annotations

import secrets

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc_idp import USERS, running_idp, sign_in

pytestmark = pytest.mark.slow  # a node subprocess

REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"  # never requested: sign_in stops at it


@pytest.fixture(scope="module")
def idp():
    # a secret starting with "-", as 1 in 64 random ones do: node's parseArgs took it for an option and the IdP
    # did not start
    with running_idp([REDIRECT_URI], client_secret="-" + secrets.token_urlsafe(24)) as running:
        yield running


@pytest.fixture(scope="module")
def discovery(idp):
    return httpx.get(f"{idp.issuer}/.well-known/openid-configuration").raise_for_status().json()


def test_discovery_describes_a_code_flow_with_pkce(idp, discovery):
    assert discovery["issuer"] == idp.issuer
    assert "code" in discovery["response_types_supported"]
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert {"email", "name", "groups"} <= set(discovery["claims_supported"])


def _id_token_claims(idp, discovery, user: str) -> dict:
    """An authorization-code + PKCE sign-in as `user` through the IdP's pages; the validated ID token's claims."""
    nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    with OAuth2Client(idp.client_id, idp.client_secret, scope="openid email profile", redirect_uri=REDIRECT_URI,
                      code_challenge_method="S256") as client:
        url, state = client.create_authorization_url(discovery["authorization_endpoint"], nonce=nonce,
                                                     code_verifier=verifier)
        callback = sign_in(None, url, user, stop_at=REDIRECT_URI)
        token = client.fetch_token(discovery["token_endpoint"], authorization_response=callback, state=state,
                                   code_verifier=verifier)
    keys = KeySet.import_key_set(httpx.get(discovery["jwks_uri"]).raise_for_status().json())
    claims = jwt.decode(token["id_token"], keys).claims
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": idp.issuer}, aud={"essential": True, "value": idp.client_id},
                          nonce={"essential": True, "value": nonce}, exp={"essential": True}).validate(claims)
    return claims


@pytest.mark.parametrize("user", sorted(USERS))
def test_sign_in_releases_the_users_claims_in_the_id_token(idp, discovery, user):
    claims = _id_token_claims(idp, discovery, user)
    assert claims["sub"] == user
    assert claims["email"] == USERS[user]["email"]
    assert claims["email_verified"] is True
    assert claims["name"] == USERS[user]["name"]
    assert claims["groups"] == USERS[user]["groups"]
    assert ("hr" in claims["groups"]) is (user == "hana")


def test_an_unknown_login_is_not_signed_in(idp, discovery):
    with OAuth2Client(idp.client_id, idp.client_secret, scope="openid", redirect_uri=REDIRECT_URI) as client:
        url, _ = client.create_authorization_url(discovery["authorization_endpoint"])
        with pytest.raises(AssertionError, match="neither a redirect nor a form"):  # the IdP's error page
            sign_in(None, url, "mallory", stop_at=REDIRECT_URI)


def test_the_provider_stops_on_exit_even_after_a_failure():
    with pytest.raises(RuntimeError, match="inside"), running_idp([REDIRECT_URI]) as running:
        issuer = running.issuer
        raise RuntimeError("a failure inside the block")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{issuer}/.well-known/openid-configuration")
