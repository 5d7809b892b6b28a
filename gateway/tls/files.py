"""Certificate and key files, checked the way a person fixes them: which file, and what is wrong with it.

OpenSSL's own words for most of these are "PEM lib" whichever file is
wrong, so the files are read here first (exists, readable, holds the PEM
block it should), and only then given to OpenSSL to learn whether the key
belongs to the certificate.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.config.schema import Config, TlsFiles
from gateway.tls.settings import LISTEN_EXAMPLE

MAX_PEM_BYTES = 1024 * 1024  # a chain of a few certificates is a few KiB: anything bigger is not one
CERT_MARK = b"-----BEGIN CERTIFICATE-----"
KEY_MARK = b"PRIVATE KEY-----"


class EncryptedKey(Exception):
    """OpenSSL asked for a passphrase: the server cannot type one."""


def resolve(files: TlsFiles, config_dir: Path) -> tuple[Path, Path]:
    """The certificate and key paths, relative ones taken from the config's folder."""
    cert = config_dir / files.cert
    return cert, config_dir / files.key if files.key else cert


def every_tls_files(config: Config) -> list[TlsFiles]:
    """The listeners' certificates, then the vhosts', as the config names them."""
    return [*config.tls_listeners.values(), *(vhost.tls for vhost in config.vhosts if vhost.tls is not None)]


def tls_problems(config: Config) -> list[tuple[str, str, str]]:
    """(source, key path, message) for every certificate or key that cannot serve, for `gateway check`."""
    problems = []
    if not any(spec in config.tls_listeners for spec in config.server.listen):
        # --listen replaces the config's listeners, TLS ones too: say so when that is what left none.
        replaced = " (the --listen addresses replace the config's, TLS ones too)" if config.tls_listeners else ""
        for vhost in config.vhosts:
            if vhost.tls is not None:
                example = f"as in listen = [{LISTEN_EXAMPLE}]"
                message = f"no listener serves TLS{replaced}; give one a default certificate, {example}"
                problems.append((vhost.source, vhost.tls.where, message))
    for files in every_tls_files(config):
        for key, message in check_files(files, config.config_dir):
            problems.append((files.source, f"{files.where}.{key}", message))
    return problems


def check_files(files: TlsFiles, config_dir: Path) -> list[tuple[str, str]]:
    """(key, message) for what is wrong with one cert/key pair; [] when they load and match."""
    cert, key = resolve(files, config_dir)
    wrong = _check_pem(cert, CERT_MARK, "a PEM certificate (-----BEGIN CERTIFICATE-----)")
    if wrong:
        return [("cert", wrong)]
    wrong = _check_pem(key, KEY_MARK, "a PEM private key (-----BEGIN PRIVATE KEY-----)")
    if wrong and files.key:
        return [("key", wrong)]
    if wrong:
        return [("cert", f'{cert} holds no private key; name the key file too, as in key = "site.key"')]
    try:
        load_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, key)
    except EncryptedKey:
        return [("key", f"{key} is protected by a passphrase; decrypt it (openssl pkey -in KEY -out KEY.plain)")]
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            return [("key", f"{key} is not the key of the certificate {cert}")]
        return [("cert", f"{cert} and {key} cannot be used together: {exc.reason or exc}")]
    return []


def load_pair(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    """The pair into context; ssl.SSLError or EncryptedKey when it cannot be (never a passphrase prompt)."""
    context.load_cert_chain(cert, key, password=_no_passphrase)


def _no_passphrase() -> str:
    raise EncryptedKey


def _check_pem(path: Path, mark: bytes, expected: str) -> str | None:
    try:
        with path.open("rb") as file:
            head = file.read(MAX_PEM_BYTES + 1)
    except FileNotFoundError:
        return f"{path} does not exist"
    except PermissionError:
        return f"{path} cannot be read by this user (permission denied)"
    except IsADirectoryError:
        return f"{path} is a folder, not a file"
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    if mark not in head or len(head) > MAX_PEM_BYTES:
        return f"{path} is not {expected}"
    return None
