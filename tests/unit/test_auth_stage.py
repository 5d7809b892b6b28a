"""The auth stage in process: parse() on real user files, wrap() around a tiny ASGI app, no server.

Clients are httpx (its BasicAuth and DigestAuth, a browser-like client's
digest) over httpx.ASGITransport, and hand-made headers for what a normal
client never sends (replays, wrong uri, wrong realm).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.stages import auth
from gateway.stages._auth_penalty import Penalty
from gateway.stages._auth_schemes import BasicScheme, DigestScheme
from gateway.stages._digest import parse_params
from gateway.types import HandlerContext, Message, Scope
from tests.conftest import require_program

WHERE = "vhost[0] (example.com) route[0] '/'"


class Problems(list[tuple[str, str]]):
    def __call__(self, key: str, message: str) -> None:
        self.append((key, message))


def context(folder: Path) -> HandlerContext:
    return HandlerContext(folder, WHERE, "")


def htpasswd(path: Path, user: str, password: str, flag: str = "-B") -> None:
    program = require_program("htpasswd")
    create = [] if path.exists() else ["-c"]
    command = [program, *create, "-i" + flag.lstrip("-"), str(path), user]
    subprocess.run(command, input=password, capture_output=True, text=True, check=True)


def htdigest(path: Path, realm: str, user: str, password: str) -> None:
    program = require_program("htdigest")
    create = [] if path.exists() else ["-c"]
    subprocess.run(
        [program, *create, str(path), realm, user],
        input=f"{password}\n{password}\n",
        capture_output=True,
        text=True,
        check=True,
    )


def parsed(folder: Path, value: Any) -> auth.AuthOptions:
    problems = Problems()
    options = auth.parse({"auth": value}, context(folder), problems)
    assert problems == []
    assert options is not None
    # Each test its own penalty table, so one test's failures do not slow another.
    return dataclasses.replace(options, penalty=Penalty())


class Recorder:
    """The app behind the stage: remembers the scope it was given and answers with the user."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        body = f"user={scope.get('user')} type={scope.get('auth_type')}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


def client(options: auth.AuthOptions, recorder: Recorder | None = None, **kwargs: Any) -> httpx.AsyncClient:
    app = auth.wrap(options, recorder or Recorder())
    transport = httpx.ASGITransport(app=app, client=kwargs.pop("client_address", ("10.0.0.1", 1234)))
    return httpx.AsyncClient(transport=transport, base_url="http://example.com", **kwargs)


def get(options: auth.AuthOptions, path: str = "/x", recorder: Recorder | None = None, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with client(options, recorder, auth=kwargs.pop("auth", None)) as http:
            return await http.get(path, **kwargs)

    return asyncio.run(go())


@pytest.fixture
def basic_files(tmp_path: Path) -> Path:
    users = tmp_path / ".htpasswd"
    htpasswd(users, "alice", "secret", "-B")
    htpasswd(users, "bob", "hunter2", "-5")
    htpasswd(users, "carol", "pw", "-m")
    htpasswd(users, "dave", "pw", "-s")
    (tmp_path / ".htgroup").write_text("admins: alice carol\n")
    return tmp_path


@pytest.fixture
def digest_files(tmp_path: Path) -> Path:
    users = tmp_path / ".htdigest"
    htdigest(users, "admin", "alice", "secret")
    htdigest(users, "admin", "bob", "hunter2")
    with users.open("a") as out:  # SHA-256 lines as `gateway passwd --algorithm SHA-256` writes them
        for user, password in (("alice", "secret"), ("bob", "hunter2")):
            out.write(f"{user}:admin:{hashlib.sha256(f'{user}:admin:{password}'.encode()).hexdigest()}\n")
    (tmp_path / ".htgroup").write_text("admins: alice\n")
    return tmp_path


BASIC = {"type": "basic", "realm": "staff", "users": ".htpasswd"}
DIGEST = {"type": "digest", "realm": "admin", "users": ".htdigest"}


# Basic --------------------------------------------------------------------------------------------


def test_basic_challenge_without_credentials(basic_files: Path) -> None:
    recorder = Recorder()
    reply = get(parsed(basic_files, BASIC), recorder=recorder)
    assert reply.status_code == 401
    assert reply.headers.get_list("www-authenticate") == ['Basic realm="staff", charset="UTF-8"']
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert "401" in reply.text
    assert recorder.scopes == []


@pytest.mark.parametrize(
    ("user", "password"), [("alice", "secret"), ("bob", "hunter2"), ("carol", "pw"), ("dave", "pw")]
)
def test_basic_every_hash_kind(basic_files: Path, user: str, password: str) -> None:
    recorder = Recorder()
    reply = get(parsed(basic_files, BASIC), recorder=recorder, auth=(user, password))
    assert reply.status_code == 200
    assert reply.text == f"user={user} type=Basic"
    seen = recorder.scopes[0]
    assert seen["user"] == user and seen["auth_type"] == "Basic"
    assert all(name != b"authorization" for name, _ in seen["headers"])


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(b"alice:wrong").decode(),
        "Basic " + base64.b64encode(b"nobody:secret").decode(),
        "Basic " + base64.b64encode(b"alice").decode(),  # no colon
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"\xff\xfe:secret").decode(),  # not UTF-8
        "Basic",
    ],
)
def test_basic_refusals(basic_files: Path, header: str) -> None:
    reply = get(parsed(basic_files, BASIC), headers={"Authorization": header})
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].startswith("Basic ")


def test_unknown_scheme_gets_the_challenge(basic_files: Path) -> None:
    reply = get(parsed(basic_files, BASIC), headers={"Authorization": "Bearer abc"})
    assert reply.status_code == 401


def test_scheme_name_is_case_insensitive(basic_files: Path) -> None:
    header = "bASIC " + base64.b64encode(b"alice:secret").decode()
    assert get(parsed(basic_files, BASIC), headers={"Authorization": header}).status_code == 200


def test_pass_authorization_keeps_the_header(basic_files: Path) -> None:
    recorder = Recorder()
    reply = get(parsed(basic_files, {**BASIC, "pass_authorization": True}), recorder=recorder, auth=("alice", "secret"))
    assert reply.status_code == 200
    assert any(name == b"authorization" for name, _ in recorder.scopes[0]["headers"])


def test_header_list_is_copied_not_mutated(basic_files: Path) -> None:
    options = parsed(basic_files, BASIC)
    recorder = Recorder()
    headers = [(b"host", b"example.com"), (b"authorization", b"Basic " + base64.b64encode(b"alice:secret"))]
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"", "headers": headers}
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    asyncio.run(auth.wrap(options, recorder)(scope, receive, send))
    assert sent[0]["status"] == 200
    assert len(headers) == 2 and scope["headers"] is headers  # the server's list is left alone
    assert scope["user"] == "alice"  # for the access log
    assert recorder.scopes[0]["headers"] == [(b"host", b"example.com")]


def test_basic_success_is_cached(basic_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = parsed(basic_files, BASIC)
    scheme = options.schemes[0]
    assert isinstance(scheme, BasicScheme)
    calls: list[bytes] = []
    stored = scheme._users["alice"]
    original = type(stored).verify

    def counting(self: Any, password: bytes) -> bool:
        calls.append(password)
        return original(self, password)

    monkeypatch.setattr(type(stored), "verify", counting)

    async def go() -> list[int]:
        async with client(options, auth=("alice", "secret")) as http:
            return [(await http.get("/x")).status_code for _ in range(3)]

    assert asyncio.run(go()) == [200, 200, 200]
    assert calls.count(b"secret") == 1
    assert not any(b"secret" in key for key in scheme._cache)  # keyed by an HMAC, not the password


def test_bcrypt_runs_off_the_event_loop(tmp_path: Path) -> None:
    program = require_program("htpasswd")
    line = subprocess.run([program, "-nbB", "-C", "10", "alice", "secret"], capture_output=True, text=True, check=True)
    (tmp_path / ".htpasswd").write_text(line.stdout)  # cost 10: ~60 ms a check
    options = parsed(tmp_path, BASIC)

    async def go() -> float:
        async with client(options, auth=("alice", "wrong")) as http:
            ticks = 0
            stop = False

            async def tick() -> None:
                nonlocal ticks
                while not stop:
                    ticks += 1
                    await asyncio.sleep(0)

            ticker = asyncio.create_task(tick())
            await http.get("/x")
            stop = True
            await ticker
            return ticks

    assert asyncio.run(go()) > 10  # the loop kept turning while bcrypt ran


# require and groups -------------------------------------------------------------------------------


def test_require_users_and_groups(basic_files: Path) -> None:
    options = parsed(basic_files, {**BASIC, "require": ["bob", "group:admins"], "groups": ".htgroup"})
    assert get(options, auth=("alice", "secret")).status_code == 200  # in admins
    assert get(options, auth=("bob", "hunter2")).status_code == 200  # named
    assert get(options, auth=("carol", "pw")).status_code == 200  # in admins
    refused = get(options, auth=("dave", "pw"))
    assert refused.status_code == 403
    assert "www-authenticate" not in refused.headers


# Digest -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
def test_digest_with_httpx(digest_files: Path, algorithm: str) -> None:
    options = parsed(digest_files, {**DIGEST, "algorithm": algorithm})
    recorder = Recorder()

    async def go() -> list[httpx.Response]:
        async with client(options, recorder, auth=httpx.DigestAuth("alice", "secret")) as http:
            return [await http.get("/x?a=1&b=%20"), await http.get("/y"), await http.post("/z", content=b"data")]

    replies = asyncio.run(go())
    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert replies[0].text == "user=alice type=Digest"
    assert [scope["user"] for scope in recorder.scopes] == ["alice"] * 3


def test_digest_challenge_shape(digest_files: Path) -> None:
    reply = get(parsed(digest_files, {**DIGEST, "algorithm": ["SHA-256", "MD5"]}))
    assert reply.status_code == 401
    challenges = reply.headers.get_list("www-authenticate")
    assert len(challenges) == 2
    first = parse_params(challenges[0].removeprefix("Digest "))
    second = parse_params(challenges[1].removeprefix("Digest "))
    assert first is not None and second is not None
    assert first["realm"] == "admin" and first["qop"] == "auth" and first["algorithm"] == "SHA-256"
    assert second["algorithm"] == "MD5"
    assert first["nonce"] == second["nonce"] and first["opaque"] == second["opaque"]
    assert "stale" not in first


def challenge_of(reply: httpx.Response, algorithm: str = "MD5") -> dict[str, str]:
    for value in reply.headers.get_list("www-authenticate"):
        params = parse_params(value.partition(" ")[2])
        if value.startswith("Digest ") and params and params["algorithm"] == algorithm:
            return params
    raise AssertionError(f"no {algorithm} digest challenge in {reply.headers}")


def digest_header(
    challenge: dict[str, str],
    *,
    user: str = "alice",
    password: str = "secret",
    method: str = "GET",
    uri: str = "/x",
    nc: str = "00000001",
    realm: str | None = None,
    algorithm: str = "MD5",
    opaque: str | None = None,
) -> str:
    """An Authorization header computed here, independently of the module under test."""
    h = hashlib.md5 if algorithm == "MD5" else hashlib.sha256
    realm = challenge["realm"] if realm is None else realm
    ha1 = h(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = h(f"{method}:{uri}".encode()).hexdigest()
    cnonce = "0a4f113b"
    digest = h(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    opaque = challenge["opaque"] if opaque is None else opaque
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{challenge["nonce"]}", uri="{uri}", '
        f'algorithm={algorithm}, qop=auth, nc={nc}, cnonce="{cnonce}", response="{digest}", opaque="{opaque}"'
    )


def digest_session(options: auth.AuthOptions, *steps: dict[str, Any]) -> list[httpx.Response]:
    """Get a challenge, then send one request per step with a header built from it."""

    async def go() -> list[httpx.Response]:
        async with client(options) as http:
            challenge = challenge_of(await http.get("/x"))
            replies = []
            for step in steps:
                step = dict(step)
                path = step.pop("path", "/x")
                method = step.get("method", "GET")
                header = digest_header(challenge, **step)
                replies.append(await http.request(method, path, headers={"Authorization": header}))
            return replies

    return asyncio.run(go())


def test_digest_hand_made_header_works(digest_files: Path) -> None:
    (reply,) = digest_session(parsed(digest_files, DIGEST), {})
    assert reply.status_code == 200


def test_digest_replay_is_refused(digest_files: Path) -> None:
    first, replay, next_count = digest_session(parsed(digest_files, DIGEST), {}, {}, {"nc": "00000002"})
    assert first.status_code == 200
    assert replay.status_code == 401
    assert "stale=true" in replay.headers["www-authenticate"]  # a real client just retries
    assert next_count.status_code == 200


def test_digest_wrong_uri_is_refused(digest_files: Path) -> None:
    (reply,) = digest_session(parsed(digest_files, DIGEST), {"uri": "/other", "path": "/x"})
    assert reply.status_code == 401
    assert "stale" not in reply.headers["www-authenticate"]


def test_digest_uri_with_query_and_absolute_form(digest_files: Path) -> None:
    replies = digest_session(
        parsed(digest_files, DIGEST),
        {"uri": "/x?a=1", "path": "/x?a=1"},
        {"uri": "/x", "path": "/x?a=1", "nc": "00000002"},  # the query is part of the target
        {"uri": "http://example.com/x", "path": "/x", "nc": "00000003"},
        {"uri": "/%78?q=a", "path": "/x?q=a", "nc": "00000004"},  # the path may be encoded otherwise
        {"uri": "/x?q=a%26admin=1", "path": "/x?q=a&admin=1", "nc": "00000005"},  # the query may not
    )
    assert [reply.status_code for reply in replies] == [200, 401, 200, 200, 401]


def test_digest_wrong_realm_password_method_opaque(digest_files: Path) -> None:
    replies = digest_session(
        parsed(digest_files, DIGEST),
        {"realm": "other"},
        {"password": "wrong", "nc": "00000002"},
        {"user": "nobody", "nc": "00000003"},
        {"method": "PUT", "nc": "00000004"},  # signed as PUT and sent as PUT
        {"opaque": "forged", "nc": "00000005"},
    )
    assert [reply.status_code for reply in replies[:3]] == [401, 401, 401]
    assert replies[3].status_code == 200  # a PUT signed as PUT is fine
    assert replies[4].status_code == 401 and "stale=true" in replies[4].headers["www-authenticate"]


def test_digest_method_must_match(digest_files: Path) -> None:
    options = parsed(digest_files, DIGEST)

    async def go() -> httpx.Response:
        async with client(options) as http:
            challenge = challenge_of(await http.get("/x"))
            return await http.delete("/x", headers={"Authorization": digest_header(challenge, method="GET")})

    assert asyncio.run(go()).status_code == 401


def test_digest_algorithm_not_offered_is_refused(digest_files: Path) -> None:
    (reply,) = digest_session(parsed(digest_files, DIGEST), {"algorithm": "SHA-256"})
    assert reply.status_code == 401


def test_digest_stale_nonce(digest_files: Path) -> None:
    options = parsed(digest_files, {**DIGEST, "nonce_lifetime": 1})
    scheme = options.schemes[0]
    assert isinstance(scheme, DigestScheme)
    old = time.time_ns() - 5 * 1_000_000_000
    challenge = {"realm": "admin", "nonce": scheme.nonces.mint(old), "opaque": scheme.opaque()}

    good = get(options, headers={"Authorization": digest_header(challenge)})
    assert good.status_code == 401
    assert "stale=true" in good.headers["www-authenticate"]
    bad = get(options, headers={"Authorization": digest_header(challenge, password="wrong")})
    assert bad.status_code == 401
    assert "stale" not in bad.headers["www-authenticate"]  # a wrong password is never "stale"


def test_digest_raw_utf8_target_and_username(tmp_path: Path) -> None:
    """A uri sent as raw UTF-8 bytes (no %-encoding) and a UTF-8 user name hash as the client hashed them."""
    user, realm = "jürgen", "admin"
    ha1 = hashlib.md5(f"{user}:{realm}:secret".encode()).hexdigest()
    (tmp_path / ".htdigest").write_text(f"{user}:{realm}:{ha1}\n", encoding="utf-8")
    options = parsed(tmp_path, DIGEST)
    scheme = options.schemes[0]
    assert isinstance(scheme, DigestScheme)
    nonce, opaque = scheme.nonces.mint(time.time_ns()), scheme.opaque()
    raw_path = "/café".encode()
    ha2 = hashlib.md5(b"GET:" + raw_path).hexdigest()
    digest = hashlib.md5(f"{ha1}:{nonce}:00000001:c:auth:{ha2}".encode()).hexdigest()
    header = (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="/café", qop=auth, nc=00000001,'
        f' cnonce="c", response="{digest}", opaque="{opaque}"'
    ).encode()
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/café",
        "raw_path": raw_path,
        "query_string": b"",
        "headers": [(b"authorization", header)],
    }
    sent, recorder = run_scope(options, scope)
    assert sent[0]["status"] == 200
    assert recorder.scopes[0]["user"] == "jürgen"


@pytest.mark.parametrize(
    "header",
    [
        'Digest username="alice"',
        "Digest garbage",
        'Digest username="alice", realm="admin", nonce="n", uri="/x", response="r", qop=auth-int, nc=00000001, '
        'cnonce="c"',
    ],
)
def test_digest_malformed(digest_files: Path, header: str) -> None:
    assert get(parsed(digest_files, DIGEST), headers={"Authorization": header}).status_code == 401


def test_digest_require_group(digest_files: Path) -> None:
    options = parsed(digest_files, {**DIGEST, "require": "group:admins", "groups": ".htgroup"})

    async def go(user: str, password: str) -> int:
        async with client(options, auth=httpx.DigestAuth(user, password)) as http:
            return (await http.get("/x")).status_code

    assert asyncio.run(go("alice", "secret")) == 200
    assert asyncio.run(go("bob", "hunter2")) == 403


# Both schemes -------------------------------------------------------------------------------------


def test_both_schemes_offered_either_accepted(tmp_path: Path) -> None:
    htpasswd(tmp_path / ".htpasswd", "alice", "secret")
    htdigest(tmp_path / ".htdigest", "admin", "alice", "secret")
    options = parsed(tmp_path, [DIGEST, BASIC])
    challenge = get(options)
    values = challenge.headers.get_list("www-authenticate")
    assert [value.split(" ")[0] for value in values] == ["Digest", "Basic"]
    assert get(options, auth=("alice", "secret")).text == "user=alice type=Basic"

    async def go() -> httpx.Response:
        async with client(options, auth=httpx.DigestAuth("alice", "secret")) as http:
            return await http.get("/x")

    assert asyncio.run(go()).text == "user=alice type=Digest"


# Penalty ------------------------------------------------------------------------------------------


def test_penalty_delays_repeat_failures_of_one_client_only(basic_files: Path) -> None:
    options = dataclasses.replace(
        parsed(basic_files, {**BASIC, "users": ".htpasswd"}), penalty=Penalty(free=2, base=0.2, cap=0.4)
    )
    wrong = {"Authorization": "Basic " + base64.b64encode(b"dave:wrong").decode()}  # {SHA}: no hashing time

    async def timed(http: httpx.AsyncClient) -> float:
        started = time.perf_counter()
        reply = await http.get("/x", headers=wrong)
        assert reply.status_code == 401
        return time.perf_counter() - started

    async def go() -> tuple[list[float], float, float]:
        async with client(options, client_address=("10.0.0.1", 1)) as attacker:
            delays = [await timed(attacker) for _ in range(5)]
            async with client(options, client_address=("10.0.0.2", 1)) as other:
                started = time.perf_counter()
                slow = asyncio.create_task(timed(attacker))
                await asyncio.sleep(0.01)
                other_delay = await timed(other)
                other_done = time.perf_counter() - started
                await slow
            return delays, other_delay, other_done

    delays, other_delay, other_done = asyncio.run(go())
    assert delays[0] < 0.1 and delays[1] < 0.1  # free failures
    assert 0.18 < delays[2] < 0.35  # base
    assert 0.38 < delays[3] < 0.6 and 0.38 < delays[4] < 0.6  # doubled, then capped
    assert other_delay < 0.15 and other_done < 0.3  # another client is not slowed, even meanwhile


def test_penalty_table_is_bounded_and_success_clears_only_mistypes() -> None:
    penalty = Penalty(free=1, window=60, base=1, cap=3, max_clients=100)
    for i in range(1000):
        penalty.failed(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(penalty) == 100
    assert penalty.failed("a", 0) == 0
    penalty.succeeded("a")  # a user who mistyped once, then logged in: forgiven
    assert penalty.failed("a", 1) == 0 and penalty.failed("a", 2) == 1 and penalty.failed("a", 3) == 2
    assert penalty.failed("a", 4) == 3 and penalty.failed("a", 5) == 3  # capped
    penalty.succeeded("a")  # one's own account between guesses does not reset them
    assert penalty.failed("a", 6) == 3
    assert penalty.failed("a", 100) == 0  # quiet for a window: forgiven


# WebSocket and other scopes -----------------------------------------------------------------------


def run_scope(options: auth.AuthOptions, scope: Scope) -> tuple[list[Message], Recorder]:
    recorder = Recorder()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    asyncio.run(auth.wrap(options, recorder)(scope, receive, send))
    return sent, recorder


def test_websocket_handshake_checked(basic_files: Path) -> None:
    options = parsed(basic_files, BASIC)
    scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "query_string": b"", "headers": []}
    sent, recorder = run_scope(options, scope)  # the 401 itself; the router sends it as the denial response
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 401 and recorder.scopes == []
    assert any(name == b"www-authenticate" for name, _ in sent[0]["headers"])
    authorized = {**scope, "headers": [(b"authorization", b"Basic " + base64.b64encode(b"alice:secret"))]}
    sent, recorder = run_scope(options, authorized)
    assert sent == [{"type": "websocket.accept"}] and recorder.scopes[0]["user"] == "alice"


def test_lifespan_passes_through(basic_files: Path) -> None:
    _, recorder = run_scope(parsed(basic_files, BASIC), {"type": "lifespan"})
    assert len(recorder.scopes) == 1
