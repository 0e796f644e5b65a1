"""The devstack's OpenID Connect provider: the certified `oidc-provider` package (npm, installed by
bin/setup into devstack/identity-provider/) on node, with the demo officials of its users.json.

It listens on 127.0.0.1 (29400 for `dev`, 19400 for `test`), signs JWT access tokens (RS256) for the
services' audience with the claims they need (`sub`, `role`, `region`, `iat`, `exp`), and keeps its
signing keys in `.local/<profile>/identity/keys.json`. Started detached like the broker; `up` twice
reuses what runs. `sign_in` walks the authorization code flow with PKCE as a browser would (for the
command line and the tests).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html.parser
import json
import secrets
import shlex
import shutil
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.stack import (
    EPHEMERAL_PORTS_START,
    LOCAL,
    StackError,
    _pid_alive,
    _port_open,
    _say,
    _stop_pid,
    _wait_for,
)

PROVIDER = Path(__file__).resolve().parent / "identity-provider"
USERS = PROVIDER / "users.json"
AUDIENCE = "villagecounsel"  # the services' VC_JWT_AUDIENCE (plumbing.settings.TokenSettings)
RESOURCE = "urn:villagecounsel:api"  # the resource indicator (RFC 8707) the provider maps to that audience
CLIENT_ID = "villagecounsel-dashboard"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the public password of the demo accounts, local use only


@dataclass(frozen=True)
class IdentityProfile:
    name: str
    port: int
    dashboard_origins: tuple[str, ...]
    access_token_seconds: int = 3600
    workbench_origins: tuple[str, ...] = ()  # intake's, which serves the advisors' workbench at /workbench/

    def __post_init__(self) -> None:
        if not 1024 <= self.port < EPHEMERAL_PORTS_START:
            raise ValueError(f"identity {self.name}: port {self.port} must be below {EPHEMERAL_PORTS_START}")

    @property
    def home(self) -> Path:
        return LOCAL / self.name / "identity"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def redirect_uris(self) -> list[str]:
        return [f"{origin}/" for origin in self.dashboard_origins] + [
            f"{origin}/workbench/" for origin in self.workbench_origins
        ]

    def service_environment(self) -> dict[str, str]:
        """What a service needs to take this provider's tokens (beside the HS256 development secret)."""
        return {
            "VC_JWT_JWKS_URL": self.jwks_url,
            "VC_JWT_ISSUER": self.issuer,
            "VC_JWT_AUDIENCE": AUDIENCE,
            "VC_OIDC_ISSUER": self.issuer,
            "VC_OIDC_CLIENT_ID": CLIENT_ID,
        }


# Per devstack profile (same names as devstack.stack.PROFILES). The page of the test suite's dashboard is
# served on 127.0.0.1:18003, bin/run-local's on 8003; the workbench on intake's 18000 and 8000.
IDENTITY_PROFILES = {
    "dev": IdentityProfile(
        "dev",
        29400,
        ("http://127.0.0.1:8003", "http://localhost:8003"),
        workbench_origins=("http://127.0.0.1:8000", "http://localhost:8000"),
    ),
    "test": IdentityProfile(
        "test", 19400, ("http://127.0.0.1:18003",), workbench_origins=("http://127.0.0.1:18000",)
    ),
    "bench": IdentityProfile("bench", 21400, ("http://127.0.0.1:8003",)),
}


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        raise StackError("node is needed for the identity provider: apt-get install nodejs npm (bin/setup)")
    if not (PROVIDER / "node_modules" / "oidc-provider").is_dir():
        raise StackError(f"oidc-provider is not installed in {PROVIDER}: run bin/setup (npm ci there)")
    return found


def _discovery_answers(identity: IdentityProfile) -> bool:
    try:
        answer = httpx.get(f"{identity.issuer}/.well-known/openid-configuration", timeout=2.0)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and answer.json().get("issuer") == identity.issuer


def identity_up(identity: IdentityProfile) -> None:
    pid_file = identity.home / "provider.pid"
    if _pid_alive(pid_file) and _port_open(identity.port, attempts=5):
        _say(f"identity provider already running on {identity.issuer}")
        return
    if _port_open(identity.port):
        raise StackError(f"port {identity.port} is taken by another program; stop it or use another profile")
    node = _node()
    identity.home.mkdir(parents=True, exist_ok=True)
    config = identity.home / "config.json"
    config.write_text(
        json.dumps(
            {
                "issuer": identity.issuer,
                "port": identity.port,
                "audience": AUDIENCE,
                "resource": RESOURCE,
                "access_token_seconds": identity.access_token_seconds,
                "client": {"client_id": CLIENT_ID, "redirect_uris": identity.redirect_uris},
                "users": str(USERS),
                "keys": str(identity.home / "keys.json"),
            },
            indent=2,
        )
    )
    log = identity.home / "provider.log"
    command = shlex.join([node, str(PROVIDER / "server.js"), str(config)])
    launched = subprocess.run(
        ["setsid", "sh", "-c", f"{command} >>{shlex.quote(str(log))} 2>&1 </dev/null & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid_file.write_text(launched.stdout.strip())
    _wait_for(
        lambda: _pid_alive(pid_file) is None or _discovery_answers(identity), "the identity provider", 30, log
    )
    if _pid_alive(pid_file) is None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise StackError(f"the identity provider exited at start; see {log}\n{tail}")
    _say(f"identity provider (oidc-provider) up on {identity.issuer}, keys in {identity.home / 'keys.json'}")


def identity_down(identity: IdentityProfile) -> None:
    _stop_pid(identity.home / "provider.pid", "identity provider", seconds=10)


def identity_running(identity: IdentityProfile) -> bool:
    return _pid_alive(identity.home / "provider.pid") is not None and _port_open(identity.port)


def rotate_keys(identity: IdentityProfile) -> str:
    """Put a new signing key first (the provider signs with it after a restart; the old one stays
    published). Returns the new key's kid."""
    result = subprocess.run(
        [_node(), str(PROVIDER / "server.js"), "--new-key", str(identity.home / "keys.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def drop_key(identity: IdentityProfile, kid: str) -> None:
    """Withdraw a signing key from the provider's JWKS (after a restart)."""
    subprocess.run(
        [_node(), str(PROVIDER / "server.js"), "--drop-key", kid, str(identity.home / "keys.json")],
        capture_output=True,
        check=True,
    )


class _FormReader(html.parser.HTMLParser):
    """The action of the first form on a page (the provider's sign-in form)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form" and self.action is None:
            self.action = dict(attrs).get("action")


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    id_token: str
    expires_in: int


def sign_in(
    identity: IdentityProfile, username: str, password: str = DEMO_PASSWORD, *, timeout: float = 10.0
) -> SignedIn:
    """Signs in as a browser would: the authorization request with PKCE (S256), state and nonce, the
    provider's sign-in form, the redirect back with the code, the code exchanged for tokens."""
    verifier = _base64url(secrets.token_bytes(32))
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    redirect_uri = identity.redirect_uris[0]
    with httpx.Client(base_url=identity.issuer, timeout=timeout, follow_redirects=False) as browser:
        location = browser.get(
            "/auth",
            params={
                "client_id": CLIENT_ID,
                "response_type": "code",
                "scope": "openid profile api",
                "redirect_uri": redirect_uri,
                "resource": RESOURCE,
                "code_challenge": _base64url(hashlib.sha256(verifier.encode()).digest()),
                "code_challenge_method": "S256",
                "state": state,
                "nonce": nonce,
            },
        ).headers["location"]
        form = browser.get(location)
        reader = _FormReader()
        reader.feed(form.text)
        if reader.action is None:
            raise StackError(f"the identity provider showed no sign-in form ({form.status_code})")
        answer = browser.post(reader.action, data={"username": username, "password": password})
        while answer.is_redirect and not answer.headers["location"].startswith(redirect_uri):
            answer = browser.get(answer.headers["location"])
        if not answer.is_redirect:
            raise StackError(f"signing in as {username} was refused ({answer.status_code})")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["location"]).query)
        if query.get("state") != [state] or "code" not in query:
            raise StackError(f"the identity provider answered without a code for this state: {query}")
        tokens = browser.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "client_id": CLIENT_ID,
                "code_verifier": verifier,
            },
        )
        if tokens.status_code != 200:
            raise StackError(f"the code exchange failed: {tokens.status_code} {tokens.text}")
        found = tokens.json()
    # The ID token came straight from the token endpoint; its nonce ties it to this sign-in.
    claims = json.loads(base64.urlsafe_b64decode(found["id_token"].split(".")[1] + "=="))
    if claims.get("nonce") != nonce:
        raise StackError("the ID token's nonce is not this sign-in's")
    return SignedIn(found["access_token"], found["id_token"], int(found["expires_in"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.identity",
        description="The devstack's identity provider alone: start or stop it (`up` and `env` print the "
        "services' settings for it), sign in as a demo official and print the access token, or rotate its "
        "signing keys (restart it with `down` and `up` afterwards).",
    )
    parser.add_argument("command", choices=["up", "down", "env", "token", "new-key", "drop-key"])
    parser.add_argument("name", nargs="?", help="token: the username (e.g. county-370402); drop-key: the kid")
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--profile", choices=sorted(IDENTITY_PROFILES), default="dev")
    args = parser.parse_args(argv)
    identity = IDENTITY_PROFILES[args.profile]
    try:
        if args.command in ("up", "env"):
            if args.command == "up":
                identity_up(identity)
            for name, value in identity.service_environment().items():
                print(f"export {name}={value}")
        elif args.command == "down":
            identity_down(identity)
        elif args.command == "token":
            if not args.name:
                parser.error("token needs a username, e.g. county-370402")
            print(sign_in(identity, args.name, args.password).access_token)
        elif args.command == "new-key":
            print(rotate_keys(identity))
        else:
            if not args.name:
                parser.error("drop-key needs the kid")
            drop_key(identity, args.name)
    except (StackError, httpx.HTTPError) as error:
        print(f"devstack.identity: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
