"""The plugin API's shape: the domain half in `core`, the GraphQL half in `schema.api`, and the layers apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import core
from core.errors import CORE_ERROR_CODES
from core.plugins import PluginLoadError, build_plugin_host
from schema.build import build_schema

ROOT = Path(__file__).resolve().parents[2]


def _type_checking_names() -> set[str]:
    tree = ast.parse((ROOT / "core" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    return {alias.asname or alias.name for node in block.body for alias in node.names}  # type: ignore[attr-defined]


def test_the_names_editors_see_are_the_names_core_exports() -> None:
    # given the lazily loaded exports and the TYPE_CHECKING imports of core/__init__.py
    # then they name the same things, and each lazy name resolves to the object its import names
    assert _type_checking_names() == set(core.__all__)
    for name in core.__all__:
        assert getattr(core, name) is not None, name


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", ["core"])
def test_the_domain_imports_neither_the_graphql_layer_nor_the_composition_root(layer: str) -> None:
    # given every module of the domain; then none imports schema, yunshegong or a plugin
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imports(path) if m.split(".")[0] in ("schema", "yunshegong", "plugins", "strawberry")
        )
        for path in (ROOT / layer).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_graphql_layer_does_not_import_the_composition_root() -> None:
    offenders = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "schema").rglob("*.py")
        if any(m.startswith("yunshegong") for m in _imports(p))
    }
    assert offenders == set()


def test_plugin_error_codes_join_the_one_error_code_enum() -> None:
    # given the built-in plugins; when the schema is built
    schema = build_schema(None, build_plugin_host(entry_points=False))
    codes = set(schema._schema.type_map["ErrorCode"].values)  # type: ignore[union-attr]
    # then ErrorCode holds core's codes and the plugins' own, and there is no second error enum or type
    assert set(CORE_ERROR_CODES) <= codes
    assert {
        "INSUFFICIENT_STOCK",
        "INSUFFICIENT_FUNDS",
        "SAME_WAREHOUSE",
        "IDEMPOTENCY_MISMATCH",
        "NO_COUNSELOR",
    } <= codes
    assert [n for n in schema._schema.type_map if n.endswith("ErrorCode")] == ["ErrorCode"]
    assert [n for n in schema._schema.type_map if n.endswith("Error") and n != "Error"] == ["UserError"]


def test_a_plugin_may_not_redefine_a_core_code_or_use_a_malformed_one() -> None:
    class Redefines:
        @core.hookimpl
        def register_plugin(self) -> core.PluginInfo:
            return core.PluginInfo(name="redefines", version="1")

        @core.hookimpl
        def register_error_codes(self) -> dict[str, str]:
            return {"NOT_FOUND": "mine"}

    class Malformed(Redefines):
        @core.hookimpl
        def register_plugin(self) -> core.PluginInfo:
            return core.PluginInfo(name="malformed", version="1")

        @core.hookimpl
        def register_error_codes(self) -> dict[str, str]:
            return {"too-loud": "x"}

    with pytest.raises(PluginLoadError, match=r"'redefines'.*'NOT_FOUND' is core's"):
        build_plugin_host(entry_points=False, builtins=(), extra=[Redefines()])
    with pytest.raises(PluginLoadError, match=r"'malformed'.*UPPER_SNAKE_CASE"):
        build_plugin_host(entry_points=False, builtins=(), extra=[Malformed()])


def test_a_plugin_written_for_another_plugin_api_does_not_load() -> None:
    from core.plugin_api import PLUGIN_API_VERSION

    class Future:
        @core.hookimpl
        def register_plugin(self) -> core.PluginInfo:
            return core.PluginInfo(name="future", version="3.0", api_version=PLUGIN_API_VERSION + 1)

    with pytest.raises(PluginLoadError, match=rf"'future' 3.0 .* plugin API {PLUGIN_API_VERSION + 1}, .* provides"):
        build_plugin_host(entry_points=False, builtins=(), extra=[Future()])


def test_the_plugin_guide_ships_with_the_package() -> None:
    from importlib.resources import files

    shipped = files("yunshegong") / "docs" / "plugins.md"
    assert shipped.is_file()
    assert "## Compatibility" in shipped.read_text(encoding="utf-8")
