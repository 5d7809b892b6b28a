"""Digest without a server: RFC 7616's worked example, header parsing, nonces, stale nonces, replays."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.stages import _digest
from gateway.stages._digest import Nonces, ha1, parse_params, response

SECOND = 1_000_000_000

# RFC 7616 §3.9.1: Mufasa / "Circle of Life" in realm http-auth@example.org.
RFC = {
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "uri": "/dir/index.html",
}


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_worked_example(algorithm: str, expected: str) -> None:
    stored = ha1(algorithm, "Mufasa", RFC["realm"], "Circle of Life")
    got = response(algorithm, stored, RFC["nonce"], "00000001", RFC["cnonce"], "auth", "GET", RFC["uri"])
    assert got == expected


def test_sess_variants_hash_the_nonces_into_ha1() -> None:
    stored = ha1("MD5-sess", "Mufasa", RFC["realm"], "Circle of Life")
    assert stored == hashlib.md5(b"Mufasa:http-auth@example.org:Circle of Life").hexdigest()
    session = hashlib.md5(f"{stored}:{RFC['nonce']}:{RFC['cnonce']}".encode()).hexdigest()
    ha2 = hashlib.md5(b"GET:/dir/index.html").hexdigest()
    expected = hashlib.md5(f"{session}:{RFC['nonce']}:00000001:{RFC['cnonce']}:auth:{ha2}".encode()).hexdigest()
    assert response("MD5-sess", stored, RFC["nonce"], "00000001", RFC["cnonce"], "auth", "GET", RFC["uri"]) == expected


def test_parse_params_as_rfc_7616_writes_them() -> None:
    header = (
        'username="Mufasa",\n realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256,'
        ' nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001,'
        ' cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",'
        ' qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",'
        ' opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    params = parse_params(header)
    assert params is not None
    assert params["username"] == "Mufasa"
    assert params["algorithm"] == "SHA-256"
    assert params["nc"] == "00000001"
    assert params["qop"] == "auth"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('Username="a\\"b", REALM=x', {"username": 'a"b', "realm": "x"}),
        ("a=1,b=2,", {"a": "1", "b": "2"}),
        ("a=1, , b=2", {"a": "1", "b": "2"}),  # RFC 9110 §5.6.1: empty list elements are accepted
        (", a=1,,", {"a": "1"}),
        ("", {}),
        ('a="unterminated', None),
        ("a=1 b=2", None),
        ("a=1, a=2", None),  # a parameter given twice is ambiguous
        ("=1", None),
    ],
)
def test_parse_params_edges(text: str, expected: dict[str, str] | None) -> None:
    assert parse_params(text) == expected


def test_quote_escapes() -> None:
    assert _digest.quote('a"b\\c') == '"a\\"b\\\\c"'


# Nonces -----------------------------------------------------------------------------------------


def test_nonce_lifetime_and_mac() -> None:
    nonces = Nonces("admin", lifetime=300)
    now = 1_700_000_000 * SECOND
    nonce = nonces.mint(now)
    assert nonces.issued_at(nonce, now) == now
    assert nonces.issued_at(nonce, now + 299 * SECOND) == now
    assert nonces.issued_at(nonce, now + 301 * SECOND) is None  # stale
    assert nonces.issued_at(nonce, now - SECOND) is None  # from the future: not ours


def test_nonce_of_another_realm_or_forged_is_refused() -> None:
    now = 1_700_000_000 * SECOND
    nonce = Nonces("admin", 300).mint(now)
    assert Nonces("other", 300).issued_at(nonce, now) is None
    raw = bytearray(base64.urlsafe_b64decode(nonce))
    raw[0] ^= 1  # move the timestamp: the MAC no longer fits
    assert Nonces("admin", 300).issued_at(base64.urlsafe_b64encode(bytes(raw)).decode(), now) is None
    assert Nonces("admin", 300).issued_at("not base64 at all!", now) is None
    assert Nonces("admin", 300).issued_at("", now) is None


def test_nonce_of_another_process_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1_700_000_000 * SECOND
    nonces = Nonces("admin", 300)
    nonce = nonces.mint(now)
    monkeypatch.setattr(_digest, "_secret_pid", -1)  # as if this were a forked worker
    assert nonces.issued_at(nonce, now) is None


def test_nonce_counts_refuse_replays_but_allow_reordering() -> None:
    nonces = Nonces("admin", 300)
    now = 1_700_000_000 * SECOND
    nonce = nonces.mint(now)
    assert nonces.use(nonce, now, "00000001", now)
    assert not nonces.use(nonce, now, "00000001", now)  # replay
    assert nonces.use(nonce, now, "00000003", now)
    assert nonces.use(nonce, now, "00000002", now)  # late, but never seen: parallel requests
    assert not nonces.use(nonce, now, "00000002", now)
    assert nonces.use(nonce, now, "00000100", now)
    assert not nonces.use(nonce, now, "00000004", now)  # fell out of the 64-wide window
    assert nonces.use(nonce, now, "000000ff", now)
    assert not nonces.use(nonce, now, "000000ff", now)
    assert not nonces.use(nonce, now, "00000000", now)
    assert not nonces.use(nonce, now, "1", now)  # nc is exactly 8 hex digits
    assert not nonces.use(nonce, now, "0000000g", now)


def test_nonce_table_is_bounded_and_forgotten_nonces_are_stale() -> None:
    nonces = Nonces("admin", 300, max_tracked=10)
    now = 1_700_000_000 * SECOND
    minted = [(nonces.mint(now + i), now + i) for i in range(25)]
    for nonce, issued in minted[:20]:
        assert nonces.use(nonce, issued, "00000001", now + 30)
    assert len(nonces._seen) == 10
    # Pushed out of the table: cannot tell a replay, so refused (the client gets stale=true).
    assert not nonces.use(minted[0][0], minted[0][1], "00000002", now + 30)
    # Minted before the newest forgotten one and never used: refused the same way.
    assert not nonces.use(minted[5][0], minted[5][1], "00000005", now + 30)
    # Newer than anything forgotten and never used: fine.
    assert nonces.use(minted[21][0], minted[21][1], "00000001", now + 30)


def test_expired_nonces_leave_the_table_without_raising_the_watermark() -> None:
    nonces = Nonces("admin", 10)
    now = 1_700_000_000 * SECOND
    old = nonces.mint(now)
    assert nonces.use(old, now, "00000001", now)
    later = now + 20 * SECOND
    fresh = nonces.mint(later)
    assert nonces.use(fresh, later, "00000001", later)
    assert old not in nonces._seen
    assert nonces._forgotten_before == 0


def test_a_nonce_of_another_lifetime_is_not_this_tables() -> None:
    """Routes of one realm with different nonce_lifetime keep their own nonce counts: neither takes the other's
    nonces, or a header used on one vhost could be replayed on another."""
    now = 10**18
    nonce = Nonces("admin", 300).mint(now)
    assert Nonces("admin", 300).issued_at(nonce, now) == now
    assert Nonces("admin", 600).issued_at(nonce, now) is None
