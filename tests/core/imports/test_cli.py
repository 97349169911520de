"""`yunshegong import …` in process (main()) on a database of its own: exit codes, --dry-run, --json."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yunshegong.cli import main


@pytest.fixture
def cli_db(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from core.database import database_url_for, drop_database, ensure_database

    name = f"ysg_import_cli_{os.getpid()}"
    asyncio.run(drop_database(server_url, name))
    asyncio.run(ensure_database(server_url, name))
    rendered = database_url_for(server_url, name).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", rendered)
    monkeypatch.setenv("YUNSHEGONG_PLUGINS", "")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    yield rendered
    asyncio.run(drop_database(server_url, name))


def _owner(work: Any) -> Any:
    from core.database import create_engine

    async def go() -> Any:
        engine = create_engine(os.environ["DATABASE_URL"], pool_size=1)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _setup() -> int:
    from sqlalchemy import text

    async def create(conn: Any) -> int:
        org = await conn.scalar(
            text("INSERT INTO organizations (name, kind) VALUES ('甲社工站', 'agency') RETURNING id")
        )
        await conn.execute(text("INSERT INTO districts (name, kind) VALUES ('雁塔区', 'district')"))
        return int(org)

    return int(_owner(create))


def _phones() -> set[str]:
    from sqlalchemy import text

    async def read(conn: Any) -> set[str]:
        return set((await conn.scalars(text("SELECT phone FROM volunteers"))).all())

    return set(_owner(read))


def test_import_exit_codes_dry_run_and_json(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["migrate"]) == 0
    org = _setup()
    good = tmp_path / "good.csv"
    good.write_bytes("姓名,手机号,所在区县,志愿类型\n张三,13812345678,雁塔区,线下\n".encode("gbk"))
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "姓名,手机号,所在区县,志愿类型\n李四,13912345678,雁塔区,线上\n王五,123,火星区,飞行员\n", encoding="utf-8"
    )
    capsys.readouterr()

    # a dry run reports and writes nothing
    assert main(["import", "volunteers", str(good), "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["dry_run"], report["created"]) == (True, 1)
    assert _phones() == set()

    # the real run writes; the organisation by name; its progress bar goes through reading, checking and
    # writing, and is full only once written
    from rich.progress import Progress

    bar: list[tuple[object, object, object]] = []
    real_update = Progress.update

    def update(self: Progress, task: Any, **changes: Any) -> None:
        bar.append((changes.get("description"), changes.get("completed"), changes.get("total")))
        real_update(self, task, **changes)

    monkeypatch.setattr(Progress, "update", update)
    assert main(["import", "volunteers", str(good), "--organization", "甲社工站"]) == 0
    assert _phones() == {"13812345678"}
    stages = [description for description, _, _ in bar]
    assert stages.index("reading") < stages.index("checking") < stages.index("writing")
    assert bar[-1] == ("writing", 1, 1)
    monkeypatch.setattr(Progress, "update", real_update)
    capsys.readouterr()

    # rejected rows: exit 1, the good row imported, the bad one reported by row, column and code
    assert main(["import", "volunteers", str(bad), "--organization", str(org), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["created"] == 1
    assert {(i["row"], i["column"], i["code"]) for i in report["rejected"]} == {
        (3, "手机号", "INVALID_PHONE"),
        (3, "所在区县", "NOT_FOUND"),
        (3, "志愿类型", "INVALID_INPUT"),
    }
    assert _phones() == {"13812345678", "13912345678"}

    # the table output names the problems too
    assert main(["import", "volunteers", str(bad)]) == 1
    assert "INVALID_PHONE" in capsys.readouterr().out

    # a file-level problem: exit 2, nothing written
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"%PDF-1.4 binary")
    assert main(["import", "volunteers", str(junk), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["errors"][0]["code"] == "UNSUPPORTED_FILE"
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('"手机号" = "blood_type"\n', encoding="utf-8")
    assert main(["import", "volunteers", str(good), "--mapping", str(mapping)]) == 2
    assert "INVALID_MAPPING" in capsys.readouterr().err
    assert main(["import", "volunteers", str(good), "--organization", "无此机构"]) == 2
    assert _phones() == {"13812345678", "13912345678"}
