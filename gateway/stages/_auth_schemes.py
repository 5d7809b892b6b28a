"""The two schemes behind `auth`: Basic (RFC 7617) over htpasswd, Digest (RFC 7616) over htdigest.

A scheme turns the credentials of one Authorization header into an outcome:
OK (with the user), FAIL (wrong or malformed: counts toward the client's
penalty) or STALE (Digest only: right password, nonce no longer good, so the
challenge says stale=true and the client retries without asking its user).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from gateway.stages import _digest
from gateway.stages._htpasswd import StoredHash
from gateway.types import Scope, client_target

OK, FAIL, STALE = "ok", "fail", "stale"
Outcome = tuple[str, str]  # (OK | FAIL | STALE, user)

# Hash checks run here, not in the loop's default executor: a flood of wrong
# bcrypt passwords then queues behind itself instead of starving file reads
# and WSGI calls that share the default pool.
_HASH_THREADS = 4
_executor: ThreadPoolExecutor | None = None


async def _verify(stored: StoredHash, password: bytes) -> bool:
    global _executor
    if not stored.slow:
        return stored.verify(password)
    if _executor is None:
        _executor = ThreadPoolExecutor(_HASH_THREADS, thread_name_prefix="gateway-auth")
    return await asyncio.get_running_loop().run_in_executor(_executor, stored.verify, password)


class Scheme:
    """What the middleware needs of either scheme."""

    name: str  # the lower-case scheme token, as matched against the header
    auth_type: str  # "Basic" | "Digest": AUTH_TYPE for CGI
    realm: str
    allowed: frozenset[str] | None  # None: any valid user
    pass_authorization: bool
    identity: tuple[str, str, str] = ("", "", "")  # kind, realm, user file: what a check vouches for

    def challenges(self, stale: bool) -> list[bytes]:
        raise NotImplementedError

    async def authenticate(self, credentials: str, scope: Scope) -> Outcome:
        raise NotImplementedError


class BasicScheme(Scheme):
    """Basic over an htpasswd table; successful checks are remembered briefly (keyed by an HMAC)."""

    name, auth_type = "basic", "Basic"
    CACHE_SECONDS = 60.0
    CACHE_SIZE = 1024

    def __init__(
        self, realm: str, users: dict[str, StoredHash], allowed: frozenset[str] | None, pass_authorization: bool
    ) -> None:
        self.realm, self.allowed, self.pass_authorization = realm, allowed, pass_authorization
        self._users = users
        self._challenge = f'Basic realm={_digest.quote(realm)}, charset="UTF-8"'.encode("latin-1")
        # An unknown user costs a check against a real hash, so timing does not tell who exists.
        self._decoy = next((stored for stored in users.values() if stored.slow), None)
        self._cache_key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, float] = OrderedDict()  # HMAC(user:password) → expiry

    def challenges(self, stale: bool) -> list[bytes]:
        return [self._challenge]

    async def authenticate(self, credentials: str, scope: Scope) -> Outcome:
        try:
            decoded = base64.b64decode(credentials, validate=True)
            user_bytes, colon, password = decoded.partition(b":")
            user = user_bytes.decode("utf-8")
        except (binascii.Error, ValueError):
            return FAIL, ""
        stored = self._users.get(user)
        if not colon or stored is None:
            if self._decoy is not None:
                await _verify(self._decoy, secrets.token_bytes(16))
            return FAIL, ""
        key = hmac.new(self._cache_key, decoded, hashlib.sha256).digest()
        now = time.monotonic()
        expiry = self._cache.get(key)
        if expiry is not None and expiry > now:
            return OK, user
        if not await _verify(stored, password):
            return FAIL, ""
        self._cache[key] = now + self.CACHE_SECONDS
        self._cache.move_to_end(key)
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return OK, user


class DigestScheme(Scheme):
    """Digest over HA1s from an htdigest file, one challenge per offered algorithm."""

    name, auth_type = "digest", "Digest"
    _REQUIRED = ("realm", "nonce", "uri", "response", "qop", "nc", "cnonce")

    def __init__(
        self,
        realm: str,
        algorithms: tuple[str, ...],
        ha1s: dict[str, dict[str, str]],
        allowed: frozenset[str] | None,
        pass_authorization: bool,
        nonce_lifetime: float = 300.0,
    ) -> None:
        self.realm, self.allowed, self.pass_authorization = realm, allowed, pass_authorization
        self.algorithms = algorithms
        self._by_token = {algorithm.lower(): algorithm for algorithm in algorithms}
        self._ha1s = ha1s
        self.nonces = _digest.shared_nonces(realm, nonce_lifetime)
        self._quoted_realm = _digest.quote(realm)

    def opaque(self) -> str:
        """Echoed back by clients; tied to this process like the nonces."""
        return hmac.new(_digest.process_secret(), b"opaque:" + self.realm.encode(), hashlib.sha256).hexdigest()[:32]

    def challenges(self, stale: bool) -> list[bytes]:
        nonce = self.nonces.mint(time.time_ns())
        tail = f', nonce="{nonce}", opaque="{self.opaque()}"' + (", stale=true" if stale else "")
        return [
            f'Digest realm={self._quoted_realm}, qop="auth", algorithm={algorithm}{tail}'.encode("latin-1")
            for algorithm in self.algorithms
        ]

    async def authenticate(self, credentials: str, scope: Scope) -> Outcome:
        params = _digest.parse_params(credentials)
        if params is None or any(name not in params for name in self._REQUIRED):
            return FAIL, ""
        user = _username(params)
        algorithm = self._by_token.get(params.get("algorithm", "MD5").lower())
        if (
            user is None
            or algorithm is None
            or params["realm"] != self.realm
            or params["qop"] != "auth"
            or params.get("userhash", "false").lower() == "true"
            or not _uri_matches(params["uri"], scope)
        ):
            return FAIL, ""
        stored = self._ha1s[_digest.BASE_ALGORITHM[algorithm]].get(user)
        if stored is None:
            return FAIL, ""
        nonce, nc = params["nonce"], params["nc"]
        method = scope.get("method", "GET")
        expected = _digest.response(algorithm, stored, nonce, nc, params["cnonce"], "auth", method, params["uri"])
        if not hmac.compare_digest(expected.encode(), params["response"].lower().encode("latin-1")):
            return FAIL, ""
        now = time.time_ns()
        issued = self.nonces.issued_at(nonce, now)
        opaque_ok = hmac.compare_digest(params.get("opaque", "").encode("latin-1"), self.opaque().encode())
        if issued is None or not opaque_ok or not self.nonces.use(nonce, issued, nc, now):
            return STALE, user
        return OK, user


def _username(params: dict[str, str]) -> str | None:
    """username, or username* in RFC 8187's UTF-8''percent-encoded form; header text is latin-1 of UTF-8."""
    if "username*" in params:
        if "username" in params:
            return None
        charset, _, encoded = params["username*"].partition("''")
        try:
            return unquote(encoded, errors="strict") if charset.lower() == "utf-8" else None
        except UnicodeDecodeError:
            return None
    raw = params.get("username")
    if raw is None:
        return None
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def _uri_matches(uri: str, scope: Scope) -> bool:
    """Whether the header's uri is the target the client sent (RFC 7616 §3.4.6).

    The client's own target, before a rewrite changed the path (as Apache
    checks the request line). The path may differ in %-encoding; the query
    may not: "a%26b=1" and "a&b=1" are different requests.
    """
    path, _, query = client_target(scope).partition("?")
    if uri.startswith(("http://", "https://")):  # absolute-form: compare from the path on
        slash = uri.find("/", uri.find("//") + 2)
        uri = uri[slash:] if slash >= 0 else "/"
    uri_path, _, uri_query = uri.partition("?")
    if uri_query != query:
        return False
    return uri_path == path or unquote(uri_path) == unquote(path)
