"""PostGraphile 4 for bench.requests_page: installed with npm into a cache folder outside the repository
(reused by later runs), started with bench/postgraphile.js against the benchmark's database.

Which role it connects as: the app role (`yunshegong_app`: neither superuser nor BYPASSRLS), with
`pgSettings` setting app.org_id and app.role to the signed-in organisation member's values on every
request, as our service does per transaction. So both servers read through the same row-level security
policies, each request pays for saying who is asking, and both see the same rows (the benchmark checks).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("postgraphile.js")
PACKAGE = "postgraphile@4"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "ysg-bench-postgraphile"


def _order(*columns: str) -> str:
    return "[" + ", ".join(columns) + "]"


def query(first: int) -> str:
    """The benchmark page in PostGraphile's generated names (introspected: `allHelpRequests`, the foreign
    keys as `communityByCommunityId`, `assignmentsByRequestId`, `volunteerByVolunteerId`; the row id is
    `id`, the global id `nodeId`), in the service's order (urgency, then need-by date, then id)."""
    order = _order("URGENCY_RANK_ASC", "NEEDED_BY_SORT_ASC", "ID_ASC")
    return (
        f"{{ allHelpRequests(first: {first}, orderBy: {order}) {{ nodes {{ id title status urgency neededBy "
        "communityByCommunityId { name } "
        "assignmentsByRequestId(orderBy: ID_ASC) { nodes { status volunteerByVolunteerId { name } } } } } }"
    )


def node_version() -> str | None:
    """Node's version when both node and npm are on PATH, else None."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def installed_version(cache: Path) -> str | None:
    manifest = cache / "node_modules" / "postgraphile" / "package.json"
    if not manifest.is_file():
        return None
    version = str(json.loads(manifest.read_text(encoding="utf-8")).get("version", ""))
    return version if version.startswith("4.") else None


def install(cache: Path) -> str:
    """Install PostGraphile 4 into `cache` unless it is already there; its version. Raises on failure."""
    version = installed_version(cache)
    if version:
        return version
    cache.mkdir(parents=True, exist_ok=True)
    # A package.json of its own, so npm installs here and never walks up into another project.
    manifest = cache / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "ysg-bench-postgraphile", "private": true}\n', encoding="utf-8")
    npm = shutil.which("npm")
    assert npm is not None
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", PACKAGE],
        cwd=cache,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    version = installed_version(cache)
    if done.returncode != 0 or not version:
        raise RuntimeError(f"npm install {PACKAGE} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return version


async def start(
    cache: Path, port: int, connection: dict[str, Any], settings: dict[str, str]
) -> asyncio.subprocess.Process:
    """PostGraphile on 127.0.0.1:`port` (its pool: 10 connections), production mode, no query log."""
    env = {
        **os.environ,
        "NODE_ENV": "production",
        "NODE_PATH": str(cache / "node_modules"),
        "PGB_PORT": str(port),
        "PGB_PG": json.dumps(connection),
        "PGB_SETTINGS": json.dumps(settings),
    }
    node = shutil.which("node")
    assert node is not None
    return await asyncio.create_subprocess_exec(node, str(SCRIPT), env=env)
