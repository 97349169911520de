"""The README's run command, end to end: `yunshegong serve --demo` on the embedded database.

Runs the real console script in a subprocess (as a user would), queries it over HTTP, restarts it and
checks the data survived, then checks `yunshegong schema` prints the committed SDL.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve_process import REPO, SCRIPT, free_port, start, stop, wait_healthy


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return start([SCRIPT, "serve", "--demo", "--data-dir", str(data_dir), "--port", str(port)], env)


QUERY = '{ helpRequests(filter: {search: "结核病"}) { totalCount nodes { beneficiaries } } stats { volunteersTotal } }'
LOGIN = 'mutation { login(input: {username: "admin", password: "demo-admin-2021"}) { token errors { code } } }'


def _post(port: int, query: str, variables: dict | None = None, token: str | None = None) -> dict:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=10,
    ).json()


def test_serve_with_demo_data_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    port = free_port()
    # given the service started as the README says
    proc = _serve(data_dir, port)
    try:
        wait_healthy(proc, port)
        # when a front end signs in with the documented demo account and queries it
        anonymous = _post(port, QUERY)
        token = _post(port, LOGIN)["data"]["login"]["token"]
        body = _post(port, QUERY, token=token)
        # then the demo data set answers (and anonymous callers get nothing but the stats)
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert body["data"]["helpRequests"]["nodes"] == [{"beneficiaries": 30}]
        volunteers = body["data"]["stats"]["volunteersTotal"]
        assert volunteers == 300
        # and a new request survives a restart
        add = _post(port, "{ communities(first: 1) { nodes { id } } }", token=token)
        community_id = add["data"]["communities"]["nodes"][0]["id"]
        created = _post(
            port,
            'mutation($c: ID!) { submitHelpRequest(input: {communityId: $c, title: "重启测试", '
            'category: OTHER, urgency: LOW, requesterName: "测试", requesterPhone: "13900000000"}) '
            "{ errors { code } } }",
            {"c": community_id},
            token=token,
        )
        assert created["data"]["submitHelpRequest"]["errors"] == []
    finally:
        out = stop(proc)
    # and the startup log names the address and every demo account with its password, without alembic's noise
    from core.demo import DEMO_PASSWORDS

    assert f"http://127.0.0.1:{port}/graphql" in out
    for username, password in DEMO_PASSWORDS.items():
        assert any(line.split() == [username, password] for line in out.splitlines()), username
    assert "setup plugin" not in out
    restarted = _serve(data_dir, port)
    try:
        wait_healthy(restarted, port)
        token = _post(port, LOGIN)["data"]["login"]["token"]
        body = _post(
            port, '{ helpRequests(filter: {search: "重启测试"}) { totalCount } stats { volunteersTotal } }', token=token
        )
        # then the data is still there, and the demo was not loaded twice
        assert body["data"]["helpRequests"]["totalCount"] == 1
        assert body["data"]["stats"]["volunteersTotal"] == 300
    finally:
        restart_log = stop(restarted)
    # and a restart with nothing to migrate says nothing about alembic's migration context
    assert "Context impl" not in restart_log
    assert "transactional DDL" not in restart_log


def test_schema_command_prints_the_committed_sdl() -> None:
    out = subprocess.run([SCRIPT, "schema", "--builtin-only"], capture_output=True, check=True, text=True).stdout
    assert out == (REPO / "schema" / "schema.graphql").read_text(encoding="utf-8")


def test_createadmin_creates_a_platform_administrator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {
        "YUNSHEGONG_ADMIN_PASSWORD": "first admin pw 2026"
    }
    data_dir = str(tmp_path / "pgdata")
    created = subprocess.run(
        [SCRIPT, "createadmin", "root", "--data-dir", data_dir], env=env, capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    assert "platform administrator 'root' created" in created.stdout
    again = subprocess.run(
        [SCRIPT, "createadmin", "root", "--data-dir", data_dir], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 2
    assert "ALREADY_EXISTS" in again.stderr


# -- yunshegong plugins … (in process, on a database of their own) ---------------------------------------------------


@pytest.fixture
def cli_db(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DATABASE_URL of an empty database of this test's own; the built-in plugins loaded."""
    import asyncio

    from core.database import database_url_for, drop_database, ensure_database

    name = f"ysg_cli_{os.getpid()}"
    asyncio.run(drop_database(server_url, name))
    asyncio.run(ensure_database(server_url, name))
    url = database_url_for(server_url, name)
    rendered = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)
    monkeypatch.setenv("DATABASE_URL", rendered)
    monkeypatch.setenv("YUNSHEGONG_PLUGINS", "supplies,counseling")
    yield rendered
    asyncio.run(drop_database(server_url, name))


def _run_async(work: Any) -> Any:
    import asyncio

    from core.database import create_engine

    async def go() -> Any:
        engine = create_engine(os.environ["DATABASE_URL"], pool_size=1)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _organization(name: str) -> int:
    from core import plugin_lifecycle
    from core.services import organizations
    from core.services.context import ServiceContext
    from core.vocab import OrganizationKind

    async def create(engine: Any) -> int:
        async with plugin_lifecycle._operator_session(engine) as session, session.begin():
            ctx = ServiceContext(session=session, viewer=plugin_lifecycle.OPERATOR)
            return (await organizations.create_organization(ctx, name=name, kind=OrganizationKind.AGENCY)).id

    return int(_run_async(create))


def _tables() -> set[str]:
    from core import migrate

    async def read(engine: Any) -> set[str]:
        async with engine.connect() as conn:
            return await migrate.public_tables(conn)

    return set(_run_async(read))


def test_plugins_list_enable_disable_and_remove(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from yunshegong.cli import main

    # given a migrated database and an organisation
    assert main(["migrate"]) == 0
    org = _organization("甲 社工站")
    capsys.readouterr()
    # when the operator enables supplies for it by name and lists the plugins
    assert main(["plugins", "enable", "supplies", "--organization", "甲 社工站"]) == 0
    assert capsys.readouterr().out == "plugin 'supplies' enabled for 甲 社工站\n"
    assert main(["plugins", "list"]) == 0
    listed = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    # then each installed plugin shows version, loaded, migrated revision, organisations and source
    assert listed["NAME"][:5] == ["NAME", "VERSION", "LOADED", "MIGRATED", "ENABLED"]
    assert listed["supplies"][2] == "yes"
    assert listed["supplies"][3].startswith("s0")
    assert " ".join(listed["supplies"][4:]) == "甲 社工站 built-in"
    assert listed["counseling"][4:] == ["-", "built-in"]
    # when it is disabled by id, then no organisation has it
    assert main(["plugins", "disable", "supplies", "--organization", str(org)]) == 0
    assert capsys.readouterr().out == "plugin 'supplies' disabled for 甲 社工站\n"
    # when a loaded plugin is to be removed, then that is refused with one line saying what to do
    assert main(["plugins", "remove", "counseling", "--yes"]) == 2
    assert capsys.readouterr().err == (
        "yunshegong: plugin 'counseling' is still loaded (built-in): uninstall it or leave it out of "
        "YUNSHEGONG_PLUGINS first, or say `yunshegong plugins remove counseling --uninstalling` if you are about to\n"
    )
    # when the operator leaves it out, then removal asks for confirmation (none without a terminal) ...
    monkeypatch.setenv("YUNSHEGONG_PLUGINS", "supplies")
    assert main(["plugins", "remove", "counseling"]) == 2
    assert capsys.readouterr().err.endswith(
        "yunshegong: nothing removed: confirm, or run `yunshegong plugins remove counseling --yes`\n"
    )
    assert "counseling_sessions" in _tables()
    # ... and with --yes drops its tables, after which the database migrates without it
    assert main(["plugins", "remove", "counseling", "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plugin 'counseling': drop tables counseling_")
    assert out.endswith("plugin 'counseling' removed from the database\n")
    assert not [t for t in _tables() if t.startswith("counseling_")]
    assert main(["migrate"]) == 0
    # and unknown names are one line too
    assert main(["plugins", "enable", "nope", "--organization", "甲 社工站"]) == 2
    assert capsys.readouterr().err == "yunshegong: There is no plugin called 'nope': see `yunshegong plugins list`\n"


def test_migrate_names_an_uninstalled_plugin_in_one_line(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from core import migrate
    from core.plugins import build_plugin_host
    from yunshegong.cli import main

    # given a database migrated with a plugin that is then uninstalled (the built-ins plus `ephemeral`)
    gone = importlib.import_module("tests.fixture_plugins.ephemeral.plugin")
    dirs = build_plugin_host(entry_points=False, extra=[gone]).migration_dirs()
    _run_async(lambda engine: migrate.upgrade(engine, dirs))
    capsys.readouterr()
    # when the service migrates (as `serve` does first), then one line names the plugin and the way out
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == (
        "yunshegong: the database holds migration 'e002' of plugin 'ephemeral', which is not loaded here: reinstall "
        "it (or add it to YUNSHEGONG_PLUGINS), or drop its tables with `yunshegong plugins remove ephemeral`\n"
    )
    # when that command is run, then migrate works again
    assert main(["plugins", "remove", "ephemeral", "--yes"]) == 0
    assert main(["migrate"]) == 0
    assert "ephemeral_items" not in _tables()
