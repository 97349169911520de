"""The committed SDL is the built schema: a schema change without `make schema` fails here."""

from __future__ import annotations

from pathlib import Path

from core.plugins import build_plugin_host
from schema.build import build_schema

SDL = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_committed_sdl_matches_the_built_schema() -> None:
    built = build_schema(host=build_plugin_host(entry_points=False)).as_str() + "\n"
    assert SDL.read_text(encoding="utf-8") == built, "schema/schema.graphql is stale: run `make schema`"


def test_schema_can_be_built_repeatedly() -> None:
    # tests, the CLI and the app each build one; strawberry's relay fields must not bind to the first
    assert build_schema().as_str() == build_schema().as_str()
