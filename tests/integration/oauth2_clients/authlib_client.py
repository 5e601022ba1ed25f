"""authlib's stock OAuth2Session (requests) against a running Gatehouse, configured only from
its RFC 8414 metadata. Driven by tests/integration/oauth2_clients.rs over stdin/stdout: this
prints `AUTHORIZE <url>` and reads back the URL the browser was finally sent to (the loopback
redirect with `code` and `state`), which the Rust test gets by signing in as a person would.
The last line is `OK <json>`; anything wrong raises (non-zero exit, traceback on stderr).

Usage: authlib_client.py ISSUER CLIENT_ID REDIRECT_URI
"""

import json
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata, get_well_known_url

issuer, client_id, redirect_uri = sys.argv[1:4]

metadata = AuthorizationServerMetadata(
    requests.get(get_well_known_url(issuer, external=True), timeout=10).json()
)
metadata.validate()
assert metadata["issuer"] == issuer, metadata["issuer"]


def session():
    # A public client: no secret, so authlib authenticates with `none` (client_id in the body).
    return OAuth2Session(
        client_id=client_id, redirect_uri=redirect_uri, code_challenge_method="S256"
    )


def sign_in(s):
    """Code + PKCE: the browser's part happens in the Rust test."""
    verifier = generate_token(48)
    url, state = s.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier
    )
    print("AUTHORIZE " + url, flush=True)
    landed = sys.stdin.readline().strip()
    return s.fetch_token(
        metadata["token_endpoint"],
        authorization_response=landed,
        code_verifier=verifier,
        state=state,
    )


def refused(call):
    try:
        call()
    except OAuthError as e:
        assert e.description, "an error_description"
        return e.error
    raise AssertionError("expected an OAuth error")


s = session()
first = sign_in(s)
assert first["token_type"].lower() == "bearer", first
assert first["expires_at"], first

# Refresh with grant_type=refresh_token at the token endpoint: a new pair.
second = s.refresh_token(metadata["token_endpoint"])
assert second["refresh_token"] != first["refresh_token"]

# The first refresh token again: reuse; the whole sign-in ends, the newest token with it.
reuse = refused(
    lambda: session().refresh_token(
        metadata["token_endpoint"], refresh_token=first["refresh_token"]
    )
)
after_reuse = refused(
    lambda: session().refresh_token(
        metadata["token_endpoint"], refresh_token=second["refresh_token"]
    )
)

# A second sign-in, then revocation (RFC 7009): 200, and the refresh token is dead.
s = session()
third = sign_in(s)
revoked = s.revoke_token(
    metadata["revocation_endpoint"],
    token=third["refresh_token"],
    token_type_hint="refresh_token",
)
assert revoked.status_code == 200, revoked.status_code
after_revoke = refused(
    lambda: session().refresh_token(
        metadata["token_endpoint"], refresh_token=third["refresh_token"]
    )
)
unknown = s.revoke_token(metadata["revocation_endpoint"], token="made-up")
assert unknown.status_code == 200, unknown.status_code

print(
    "OK "
    + json.dumps(
        {
            "access_tokens": [first["access_token"], second["access_token"], third["access_token"]],
            "reuse": reuse,
            "after_reuse": after_reuse,
            "after_revoke": after_revoke,
        }
    ),
    flush=True,
)
