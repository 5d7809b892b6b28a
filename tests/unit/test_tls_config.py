"""TLS without a server: the listen tables, a vhost's tls, the SNI table, and the https:// URL of a redirect."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from typer.testing import CliRunner

from gateway.cli import cli
from gateway.config.loader import load, with_overrides
from gateway.tls.contexts import CertificateSet
from gateway.tls.files import tls_problems
from gateway.tls.redirect import https_url
from gateway.tls.serving import TlsService

CONFIG = """
[server]
listen = ["127.0.0.1:8080", { address = "127.0.0.1:8443", tls = { cert = "default.crt", key = "default.key" } }]

[[vhost]]
names = ["a.test", "*.a.test"]
tls = { cert = "a.pem" }
  [[vhost.route]]
  handler = "redirect"
  to = "https://example.com/"

[[vhost]]
names = ["b.test"]
  [[vhost.route]]
  handler = "redirect"
  to = "https://example.com/"
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    ca = trustme.CA()
    default, a = ca.issue_cert("default.test"), ca.issue_cert("a.test", "*.a.test")
    default.cert_chain_pems[0].write_to_path(str(tmp_path / "default.crt"))
    default.private_key_pem.write_to_path(str(tmp_path / "default.key"))
    a.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "a.pem"))  # key and chain in one file
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)
    return path


def test_listen_stays_a_list_of_addresses_and_tls_is_kept_by_address(config_path: Path) -> None:
    config = load(config_path)
    assert config.server.listen == ("127.0.0.1:8080", "127.0.0.1:8443")
    files = config.tls_listeners["127.0.0.1:8443"]
    assert (files.cert, files.key, files.where) == ("default.crt", "default.key", "server.listen[1].tls")
    assert config.vhosts[0].tls is not None and config.vhosts[0].tls.key is None
    assert config.vhosts[1].tls is None


def test_a_listen_override_keeps_tls_only_on_the_same_address(config_path: Path) -> None:
    config = load(config_path)
    assert TlsService(with_overrides(config, listen=("127.0.0.1:8443",))).is_tls("127.0.0.1:8443")
    assert not TlsService(with_overrides(config, listen=("127.0.0.1:9443",)))


def test_a_listen_override_that_leaves_no_tls_listener_is_refused_when_a_vhost_has_tls(config_path: Path) -> None:
    """--listen replaces every listener: a vhost's certificate would be served nowhere (and redirects go to 443)."""
    config = load(config_path)
    assert tls_problems(with_overrides(config, listen=("127.0.0.1:8443",))) == []
    problems = tls_problems(with_overrides(config, listen=("127.0.0.1:9443",)))
    assert [(where, "--listen addresses replace the config's" in message) for _, where, message in problems] == [
        ("vhost[0].tls", True)
    ]


class Connection:
    """Stands for the ssl.SSLObject the SNI callback is given: only its context is read and set."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context


def test_sni_table_exact_wildcard_and_unknown_names(config_path: Path) -> None:
    config = load(config_path)
    certificates = CertificateSet(config, {"127.0.0.1:8443": config.tls_listeners["127.0.0.1:8443"]})
    default = certificates.context_for("127.0.0.1:8443")
    assert certificates.files == 2
    chosen = {}
    for name in ("a.test", "WWW.A.TEST.", "b.test", "a.test.evil", None):
        connection = Connection(default)
        certificates.choose(connection, name, default)  # type: ignore[arg-type]
        chosen[name] = connection.context is default
    assert chosen == {"a.test": False, "WWW.A.TEST.": False, "b.test": True, "a.test.evil": True, None: True}
    assert default.minimum_version == ssl.TLSVersion.TLSv1_2


def test_gateway_check_marks_tls_listeners_and_vhost_certificates(config_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "listen: 127.0.0.1:8080, 127.0.0.1:8443 (tls)" in result.output
    assert "vhost[0] a.test, *.a.test (tls: a.pem): / → redirect" in result.output
    assert "vhost[1] b.test: / → redirect" in result.output


def scope(host: bytes | None, raw_path: bytes = b"/", query: bytes = b"") -> dict[str, object]:
    headers = [(b"host", host)] if host is not None else []
    return {"headers": headers, "raw_path": raw_path, "query_string": query, "server": ("10.0.0.5", 80)}


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (b"a.test", 8443, "https://a.test:8443/x"),
        (b"A.Test:8080", 8443, "https://a.test:8443/x"),  # the plain port is not the https one
        (b"a.test", 443, "https://a.test/x"),
        (b"[::1]:8080", 8443, "https://[::1]:8443/x"),
        (None, 8443, "https://10.0.0.5:8443/x"),  # HTTP/1.0 without Host: the address it came to
        (b"evil.test/@x", 8443, "https://10.0.0.5:8443/x"),  # not a host name: never echoed into Location
    ],
)
def test_https_url(host: bytes | None, port: int, expected: str) -> None:
    assert https_url(scope(host, b"/x"), port) == expected


def test_https_url_keeps_the_target_encoded_once() -> None:
    url = https_url(scope(b"a.test", b"/a%20b/\xc3\xa9", b"q=%2F&x=\xff"), 443)
    assert url == "https://a.test/a%20b/%C3%A9?q=%2F&x=%FF"
