"""Shared fixtures: see tests/support/server.py for run_gateway()."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI") == "true"


def require_program(name: str) -> str:
    """The program's path; under CI=true a missing program fails instead of skipping."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required under CI=true but is not installed")
        pytest.skip(f"{name} is not installed")
    return path
