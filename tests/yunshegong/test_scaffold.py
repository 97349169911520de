"""`yunshegong new-plugin`: the generated package installs, and its own tests pass with the test kit
(yunshegong.testing) against this run's PostgreSQL: what a partner's developer does on day one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from yunshegong.scaffold import ScaffoldError, new_plugin


def test_the_scaffold_installs_and_its_tests_pass(tmp_path: Path, server_url: str) -> None:
    # given a freshly generated plugin package, installed (with its entry point) into a target directory
    package = new_plugin("lectures", tmp_path)
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(package),
        ],
        check=True,
    )
    # when its own test suite runs, as its author would run it (the kit uses this run's server)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.getcwd()]), DATABASE_URL=server_url)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # then both generated tests pass
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "2 passed" in run.stdout


@pytest.mark.parametrize("name", ["Lectures", "x", "with-dash", "1st"])
def test_a_bad_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError, match="not a plugin name"):
        new_plugin(name, tmp_path)


def test_an_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    new_plugin("lectures", tmp_path)
    with pytest.raises(ScaffoldError, match="exists already"):
        new_plugin("lectures", tmp_path)
