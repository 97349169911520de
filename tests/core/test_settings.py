"""Settings are validated when read: a value that cannot work stops the command with one line
`yunshegong: <setting>: <reason>` on stderr and a non-zero exit, before anything starts, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, SettingsError

SCRIPT = shutil.which("yunshegong", path=str(Path(sys.executable).parent)) or "yunshegong"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("YUNSHEGONG_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def cli(clean_env: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """main() installs SIGTERM/SIGHUP handlers for the command it runs: give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    yield clean_env
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- reading -------------------------------------------------------------------------------------------------


def test_the_environment_is_read_by_from_env_only(clean_env: pytest.MonkeyPatch) -> None:
    # given settings in the environment, as an operator writes them
    clean_env.setenv("YUNSHEGONG_PORT", "9000")
    clean_env.setenv("YUNSHEGONG_PLUGINS", "supplies, counseling")
    clean_env.setenv("YUNSHEGONG_GRAPHIQL", "off")
    clean_env.setenv("YUNSHEGONG_LOG_LEVEL", "WARNING")
    clean_env.setenv("YUNSHEGONG_TRUSTED_PROXIES", "10.0.0.1,192.168.0.0/16")
    clean_env.setenv("YUNSHEGONG_SECRET_KEY", "")  # empty means "not set"
    clean_env.setenv("DATABASE_URL", "postgresql://owner:pw@db.example:5432/ysg")
    # when read
    env = Settings.from_env()
    # then they are typed, lists split on commas; and Settings() in code ignores the environment
    assert (env.port, env.plugins, env.graphiql, env.log_level) == (9000, ("supplies", "counseling"), False, "warning")
    assert env.trusted_proxies == ("10.0.0.1", "192.168.0.0/16")
    assert env.secret_key is None
    assert env.database_url == "postgresql://owner:pw@db.example:5432/ysg"
    assert Settings() == Settings(port=8000, plugins=None, database_url=None)
    # an empty plugin list means no plugins (not all of them)
    clean_env.setenv("YUNSHEGONG_PLUGINS", "")
    assert Settings.from_env().plugins == ()


def test_overrides_are_validated_and_none_keeps_the_value() -> None:
    base = Settings(port=9000)
    assert base.with_overrides(port=None, host="0.0.0.0") == Settings(port=9000, host="0.0.0.0")
    with pytest.raises(SettingsError) as refused:
        base.with_overrides(port=99999)
    assert refused.value.field == "port"


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("YUNSHEGONG_MAX_PAGE_SIZE", "abc", "max_page_size"),
        ("YUNSHEGONG_MAX_PAGE_SIZE", "0", "max_page_size"),
        ("YUNSHEGONG_TIMEZONE", "Mars/Olympus", "timezone"),
        ("YUNSHEGONG_SECRET_KEY", "short", "secret_key"),
        ("YUNSHEGONG_PORT", "99999", "port"),
        ("YUNSHEGONG_PORT", "0", "port"),
        ("YUNSHEGONG_GRAPHIQL", "maybe", "graphiql"),
        ("YUNSHEGONG_LOG_LEVEL", "loud", "log_level"),
        ("YUNSHEGONG_JOBS_INTERVAL", "nan", "jobs_interval"),
        ("YUNSHEGONG_LOGIN_MAX_DELAY_SECONDS", "-1", "login_max_delay_seconds"),
        ("YUNSHEGONG_TRUSTED_PROXIES", "10.0.0.1,proxy", "trusted_proxies"),
        ("DATABASE_URL", "mysql://root@localhost/db", "database_url"),
        ("DATABASE_URL", "not a url", "database_url"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{variable}: ")
    assert "\n" not in str(refused.value)


def test_secrets_are_never_echoed(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("YUNSHEGONG_SECRET_KEY", "tooshort-secret")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert "tooshort-secret" not in str(refused.value)


# -- the command line ----------------------------------------------------------------------------------------


def _one_line_error(code: int, err: str, setting: str) -> None:
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"yunshegong: {setting}: "), err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("YUNSHEGONG_MAX_PAGE_SIZE", "abc"),
        ("YUNSHEGONG_TIMEZONE", "Mars/Olympus"),
        ("YUNSHEGONG_SECRET_KEY", "short"),
        # matching's tuning (read by the service, not Settings): found from outside ending in tracebacks
        ("YUNSHEGONG_MATCH_WEIGHTS", "distance=abc"),
        ("YUNSHEGONG_MATCH_WEIGHTS", "bogus=1"),
        ("YUNSHEGONG_MATCH_WEIGHTS", "distance=nan"),
        ("YUNSHEGONG_TARGETS", "critical=1/2"),
        ("YUNSHEGONG_TARGETS", "critical=x/60/360"),
        ("YUNSHEGONG_TARGETS", "bogus=1/2/3"),
        ("YUNSHEGONG_OFFER_TTL_MINUTES", "-1"),
        ("YUNSHEGONG_OFFER_TTL_MINUTES", "abc"),
    ],
)
def test_serve_refuses_a_bad_variable_in_one_line(
    cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, variable: str, value: str
) -> None:
    from yunshegong.cli import main

    cli.setenv(variable, value)
    _one_line_error(main(["serve", "--data-dir", str(tmp_path / "pgdata")]), capsys.readouterr().err, variable)
    # and nothing was started
    assert not (tmp_path / "pgdata").exists()


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_serve_refuses_a_port_out_of_range_naming_the_flag(
    cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, port: str
) -> None:
    from yunshegong.cli import main

    code = main(["serve", "--data-dir", str(tmp_path / "pgdata"), "--port", port])
    _one_line_error(code, capsys.readouterr().err, "--port")


def test_a_data_dir_that_cannot_be_one_is_refused(
    cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from yunshegong.cli import main

    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory")
    cluttered = tmp_path / "photos"
    cluttered.mkdir()
    (cluttered / "cat.jpg").write_bytes(b"\xff\xd8")
    # a file, below a file, a directory holding something else: by flag and by variable
    _one_line_error(main(["serve", "--data-dir", str(a_file)]), capsys.readouterr().err, "--data-dir")
    _one_line_error(main(["migrate", "--data-dir", str(a_file / "pgdata")]), capsys.readouterr().err, "--data-dir")
    _one_line_error(main(["demo", "--data-dir", str(cluttered)]), capsys.readouterr().err, "--data-dir")
    cli.setenv("YUNSHEGONG_DATA_DIR", str(a_file))
    _one_line_error(main(["migrate"]), capsys.readouterr().err, "YUNSHEGONG_DATA_DIR")
    assert a_file.read_text() == "not a directory"
    assert [p.name for p in cluttered.iterdir()] == ["cat.jpg"]


def test_an_unreachable_database_url_is_one_line_without_its_password(
    cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from yunshegong.cli import main

    cli.setenv("DATABASE_URL", f"postgresql://owner:s3cret-pw@127.0.0.1:{_free_port()}/ysg")
    for command in (["serve"], ["migrate"], ["plugins", "list"]):
        code = main(command)
        err = capsys.readouterr().err
        _one_line_error(code, err, "DATABASE_URL")
        assert "s3cret-pw" not in err


def test_the_console_script_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    # given the README's command with a port that does not exist (it used to listen on a random one)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    run = subprocess.run(
        [SCRIPT, "serve", "--port", "99999", "--data-dir", str(tmp_path / "pgdata")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then one line names the flag, the exit code says it failed, and nothing listens anywhere
    assert run.returncode == 2
    assert run.stdout == ""
    _one_line_error(run.returncode, run.stderr, "--port")
    assert not (tmp_path / "pgdata").exists()
