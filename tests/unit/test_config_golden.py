"""Config errors exactly as a person reads them: config_cases/NAME.toml → NAME.out.

Each NAME.toml is checked with `python -m gateway check NAME.toml`, run in a
temporary folder that holds a copy of it, so messages name the file as the
user typed it; the folder's absolute path is written <DIR>. NAME.out is the
exact expected stderr, and the exit code must be 2.

After a deliberate change to the messages, regenerate the .out files with

    GATEWAY_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_config_golden.py

and read every changed line in the diff before committing it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trustme

from gateway.config.loader import load
from gateway.errors import ConfigError
from gateway.registry import HANDLERS
from gateway.routing.router import build_router
from tests.support.server import ROOT

pytestmark = pytest.mark.timeout(60)

CASES_DIR = Path(__file__).parent / "config_cases"
CASES = sorted(path.stem for path in CASES_DIR.glob("*.toml"))
UPDATE = os.environ.get("GATEWAY_UPDATE_GOLDEN") == "1"
UNSET = ("GATEWAY_GOLDEN_UNSET_HOST",)  # variables the cases rely on being unset


def check(folder: Path, name: str) -> tuple[int, str, str]:
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check", f"{name}.toml"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    stderr = result.stderr
    for spelling in {str(folder.resolve()), str(folder)}:
        stderr = stderr.replace(spelling, "<DIR>")
    return result.returncode, result.stdout, stderr


def write_certificates(folder: Path) -> None:
    """tls-site.crt and tls-site.key, a pair, and tls-other.key, the key of another certificate (the tls_ cases)."""
    ca = trustme.CA()
    site, other = ca.issue_cert("site.test"), ca.issue_cert("other.test")
    site.cert_chain_pems[0].write_to_path(str(folder / "tls-site.crt"))
    site.private_key_pem.write_to_path(str(folder / "tls-site.key"))
    other.private_key_pem.write_to_path(str(folder / "tls-other.key"))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    """Every case checked at once (a few subprocesses in parallel): name → (exit code, stdout, stderr)."""
    folder = tmp_path_factory.mktemp("config_cases")
    for name in CASES:
        shutil.copy(CASES_DIR / f"{name}.toml", folder / f"{name}.toml")
    write_certificates(folder)
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 1) * 2)) as pool:
        return dict(zip(CASES, pool.map(lambda name: check(folder, name), CASES), strict=True))


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 10
    missing = [name for name in CASES if not (CASES_DIR / f"{name}.out").exists() and not UPDATE]
    assert not missing, f"no .out for {missing}: run with GATEWAY_UPDATE_GOLDEN=1 and review them"


@pytest.mark.parametrize("name", CASES)
def test_config_error_message(results: dict[str, tuple[int, str, str]], name: str) -> None:
    code, stdout, stderr = results[name]
    assert code == 2, f"exit {code}\n{stdout}{stderr}"
    assert stdout == ""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert lines, "no message at all"
    for line in lines:
        assert line.startswith(f"error: {name}.toml: "), line
    expected = CASES_DIR / f"{name}.out"
    if UPDATE:
        expected.write_text(stderr)
        return
    assert stderr == expected.read_text()


@pytest.mark.parametrize("handler", list(HANDLERS))
def test_every_registered_handler_is_accepted_or_refused_in_words(tmp_path: Path, handler: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[[vhost]]\nnames = ["example.test"]\n  [[vhost.route]]\n  handler = "{handler}"\n')
    # Each handler's module imports, and what the bare route lacks is said in words on its key path.
    try:
        problems = build_router(load(config))[1]
    except ConfigError as exc:
        problems = exc.problems
    for source, key, message in problems:
        assert (source, key.partition(".route[0]")[0]) == (str(config), "vhost[0]"), (source, key, message)
        assert message, (source, key)
