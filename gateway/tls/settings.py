"""The TLS keys of a config: `listen` entries that are tables, and a vhost's `tls` table.

    [server]
    listen = ["127.0.0.1:8080", { address = "0.0.0.0:8443", tls = { cert = "site.pem", key = "site.key" } }]

A listen entry stays a plain address string unless it serves TLS; then it is
a table with the address and its default certificate (the one a client gets
when its SNI name matches no vhost's own `tls`). The loader keeps
ServerSettings.listen a tuple of address strings, so everything that binds,
inherits or describes listeners is unchanged; Config.tls_listeners maps the
address as written to its certificate.

Only shapes are checked here (no file is read: `gateway stop` loads the
config too, and must work while a certificate is missing); files.py checks
the files for `gateway check` and serve.
"""

from __future__ import annotations

from typing import Any

from gateway.config.schema import TlsFiles
from gateway.config.validate import Problems, did_you_mean

LISTEN_KEYS = ("address", "tls")
TLS_KEYS = ("cert", "key")
LISTEN_EXAMPLE = '{ address = "0.0.0.0:8443", tls = { cert = "site.pem", key = "site.key" } }'


def split_listen(server: Any, source: str, problems: Problems) -> tuple[Any, dict[str, TlsFiles]]:
    """The [server] table with listen as address strings, and the TLS listeners' certificates by address.

    The addresses themselves are checked with the plain ones, on server.listen[N].
    """
    if not isinstance(server, dict) or not isinstance(server.get("listen"), list):
        return server, {}
    addresses: list[Any] = []
    certificates: dict[str, TlsFiles] = {}
    for index, entry in enumerate(server["listen"]):
        where = f"server.listen[{index}]"
        if not isinstance(entry, dict):
            addresses.append(entry)  # a string, checked with the others; anything else is reported there
            continue
        address, files = _listen_table(entry, where, source, problems)
        addresses.append(address)
        if files is not None and address:
            certificates[address] = files
    return {**server, "listen": addresses}, certificates


def _listen_table(entry: dict[str, Any], where: str, source: str, problems: Problems) -> tuple[str, TlsFiles | None]:
    for key in entry:
        if key in TLS_KEYS:
            problems.add(f"{where}.{key}", f"{key} belongs in the listener's tls table, as in {LISTEN_EXAMPLE}")
        elif key not in LISTEN_KEYS:
            problems.add(f"{where}.{key}", f"unknown key{did_you_mean(key, LISTEN_KEYS)}; known keys: address, tls")
    address = entry.get("address")
    if not isinstance(address, str):
        # Reported on the entry itself: the loader's check of every address then adds nothing more there.
        shown = "no address" if address is None else f"address must be a string, got {address!r}"
        problems.add(where, f"{shown}; a listener table is {LISTEN_EXAMPLE}")
        return "", None
    if "tls" not in entry:
        return address, None
    return address, parse_tls(entry["tls"], f"{where}.tls", source, problems)


def parse_tls(value: Any, where: str, source: str, problems: Problems) -> TlsFiles | None:
    """A `tls = { cert, key }` table (listener or vhost); None when it is unusable (the problem is recorded)."""
    if not isinstance(value, dict):
        problems.add(where, 'expected a table, as in tls = { cert = "site.pem", key = "site.key" }')
        return None
    for key in value:
        if key not in TLS_KEYS:
            problems.add(f"{where}.{key}", f"unknown key{did_you_mean(key, TLS_KEYS)}; known keys: cert, key")
    cert, key = value.get("cert"), value.get("key")
    if not isinstance(cert, str) or not cert:
        shown = "missing" if cert is None else f"expected a file path, got {cert!r}"
        problems.add(f"{where}.cert", f"{shown}; cert is the PEM certificate chain (the site's certificate first)")
        return None
    if key is not None and (not isinstance(key, str) or not key):
        problems.add(f"{where}.key", f"expected a file path, got {key!r}; leave key out when cert holds the key too")
        return None
    return TlsFiles(cert, key, where, source)
