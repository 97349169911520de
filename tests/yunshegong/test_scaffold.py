"""`yunshegong new-plugin`: the generated package installs, and its own tests pass with the test kit
(yunshegong.testing) against this run's PostgreSQL: what a partner's developer does on day one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from core.database import create_engine, database_url_for, drop_database, ensure_database
from yunshegong.scaffold import ScaffoldError, new_plugin


async def test_a_scaffolded_plugin_from_new_plugin_to_remove(tmp_path: Path, server_url: str) -> None:
    # given `yunshegong new-plugin lectures`, pip-installed (with its entry point) into a target directory
    assert _cli(["new-plugin", "lectures", "--directory", str(tmp_path)]).returncode == 0
    package = tmp_path / "yunshegong-lectures"
    site = tmp_path / "site"
    _run(
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
    installed = {"PYTHONPATH": os.pathsep.join([str(site), os.getcwd()])}
    # when its own test suite runs, as its author would run it (the test kit, on this run's server): it
    # exercises every hook the package implements through GraphQL
    run = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        cwd=package,
        env=dict(os.environ, DATABASE_URL=server_url, **installed),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "2 passed" in run.stdout

    # and as an operator: migrate a deployment with it installed, enable it for one organisation, remove it
    name = "ysg_scaffold_lifecycle"
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    url = _render(database_url_for(server_url, name))
    try:
        env = {"DATABASE_URL": url, "YUNSHEGONG_ADMIN_PASSWORD": "correct horse battery", **installed}
        for argv in (["migrate"], ["createadmin", "admin", "--organization", "东区社工站"]):
            done = _cli(argv, env)
            assert done.returncode == 0, done.stderr[-3000:]
        assert await _tables(url) >= {"lectures_notes"}
        enabled = _cli(["plugins", "enable", "lectures", "--organization", "东区社工站"], env)
        assert enabled.returncode == 0, enabled.stderr[-3000:]
        listed = _cli(["plugins", "list"], env)
        assert "lectures" in listed.stdout, listed.stdout
        assert "东区社工站" in listed.stdout, listed.stdout
        removed = _cli(["plugins", "remove", "lectures", "--yes", "--uninstalling"], env)
        assert removed.returncode == 0, removed.stderr[-3000:]
        # then its tables, migration rows and enablements are gone, and the deployment migrates without it
        assert not {t for t in await _tables(url) if t.startswith("lectures_")}
        env.pop("PYTHONPATH")
        assert _cli(["migrate"], env).returncode == 0
    finally:
        await drop_database(server_url, name)


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """A blocking subprocess (pip, pytest): the event loop has nothing else to do meanwhile."""
    return subprocess.run(argv, **kw)  # type: ignore[call-overload,no-any-return]


def _cli(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yunshegong.cli", *argv],
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _render(url: object) -> str:
    from sqlalchemy.engine import URL

    return url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            return set(rows.scalars().all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("name", ["Lectures", "x", "with-dash", "1st"])
def test_a_bad_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError, match="not a plugin name"):
        new_plugin(name, tmp_path)


def test_an_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    new_plugin("lectures", tmp_path)
    with pytest.raises(ScaffoldError, match="exists already"):
        new_plugin("lectures", tmp_path)
