"""Messages in Chinese (the default) or English by `Accept-Language`; codes never change with the language.

Every message template in the code has a Chinese translation in the catalog that serves it (core's for core,
schema and the edge; each built-in plugin's own, or core's, for the plugin), with the same placeholders, and
no message bakes its values in with an f-string. Through the real endpoint, the same refusal answers in the
caller's language: a mutation payload's `errors { message }`, a top-level error, and a refusal at the edge.
"""

from __future__ import annotations

import string
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po
from sqlalchemy.ext.asyncio import AsyncEngine

from core import i18n
from core.database import create_sessionmaker
from core.errors import DomainError, UserErrorData
from core.i18n import Text, _, negotiate, translate
from core.plugins import build_plugin_host
from core.settings import Settings
from schema.context import AppState
from yunshegong.app import bearer_authenticator, create_app
from yunshegong.messages import Found, scan

REPO = Path(__file__).resolve().parents[2]
CORE_SOURCES = ("core", "schema", "yunshegong")
BUILTIN_PLUGINS = ("supplies", "counseling", "case_work")

ENGLISH = {"accept-language": "en-US,en;q=0.9"}
CHINESE = {"accept-language": "zh-CN"}
DEFAULT: dict[str, str] = {}


def _po(path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle) if m.id and m.string and not m.fuzzy}


def _placeholders(template: str) -> set[str]:
    return {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None}


def _untranslated(found: Found, *catalogs: Mapping[str, str]) -> list[str]:
    """Templates no catalog translates, or whose translation names other placeholders."""
    problems = []
    for msgid, places in sorted(found.messages.items()):
        translation = next((c[msgid] for c in catalogs if msgid in c), None)
        if translation is None:
            problems.append(f"{places[0]}: no translation of {msgid!r}")
        elif _placeholders(translation) != _placeholders(msgid):
            problems.append(f"{places[0]}: {msgid!r} -> {translation!r} changes the placeholders")
    return problems


def _codes() -> set[str]:
    return set(build_plugin_host(entry_points=False).error_codes)


# -- the catalogs ------------------------------------------------------------------------------------------------


def test_every_core_message_is_translated_with_the_same_placeholders() -> None:
    # given every message template in core, the GraphQL layer and the HTTP edge
    found = scan([REPO / d for d in CORE_SOURCES], _codes(), REPO)
    # then none is built with an f-string, and core's catalog translates each, placeholders intact
    assert found.baked == []
    assert len(found.messages) > 200
    assert _untranslated(found, _po(REPO / "core" / "locale" / "zh_CN.po")) == []


@pytest.mark.parametrize("plugin", BUILTIN_PLUGINS)
def test_every_plugin_message_is_translated_by_the_catalog_that_serves_it(plugin: str) -> None:
    # given a built-in plugin's messages and the catalog it registers (register_translations)
    host = build_plugin_host(entry_points=False)
    catalogs = {loaded.name: value for loaded, value in host.call_each("register_translations")}
    found = scan([REPO / "plugins" / plugin], _codes(), REPO)
    # then it registers its own catalog, and every message is translated by it (or by core's, which wins)
    assert set(catalogs[plugin]) == {"zh_CN"}
    own = _po(Path(catalogs[plugin]["zh_CN"]))
    assert found.baked == []
    assert found.messages
    assert _untranslated(found, _po(REPO / "core" / "locale" / "zh_CN.po"), own) == []
    # and its catalog holds its own messages, not core's
    assert set(own) <= set(found.messages)


def test_the_scan_reports_a_baked_message() -> None:
    # given a message built with an f-string, and one with parameters
    found = Found()
    from yunshegong.messages import scan_source

    source = 'raise DomainError("OUT_OF_RANGE", f"At most {n}.")\nv.add(f, "REQUIRED", "{label} is empty.", label=x)'
    scan_source(source, "x.py", {"OUT_OF_RANGE", "REQUIRED"}, found)
    # then the first is reported, the second is a template
    assert found.baked == ["x.py:1"]
    assert list(found.messages) == ["{label} is empty."]


# -- negotiation and translation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "zh_CN"),
        ("", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("zh", "zh_CN"),
        ("zh-TW", "zh_CN"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("EN-gb", "en"),
        ("fr-FR, en;q=0.5", "en"),
        ("fr-FR, de;q=0.8", "zh_CN"),
        ("zh-CN;q=0.3, en;q=0.7", "en"),
        ("en;q=0.2, zh;q=0.8", "zh_CN"),
        ("en;q=0, zh;q=0.1", "zh_CN"),
        ("en;q=0", "zh_CN"),
        ("*", "zh_CN"),
        ("en;q=abc, zh", "zh_CN"),
        (";;;,,,", "zh_CN"),
    ],
)
def test_negotiate_honours_q_values_and_defaults_to_chinese(header: str | None, locale: str) -> None:
    assert negotiate(header) == locale


def test_phrases_lists_and_quoted_messages_are_translated_inside_a_sentence() -> None:
    # given a template whose parameters are a translatable label, a list of them, and a raw value
    params = {"label": _("Name"), "limit": 200}
    listed = {"status": _("submitted"), "to": _("fulfilled"), "legal": (_("verified"), _("cancelled"))}
    # then each is said in the language asked for; raw values stay as they are
    assert translate("{label} is longer than {limit} characters.", params, "en") == (
        "Name is longer than 200 characters."
    )
    assert translate("{label} is longer than {limit} characters.", params, "zh_CN") == "名称不能超过 200 个字符。"
    template = "The request is {status} and cannot become {to} (it can become: {legal})."
    assert translate(template, listed, "en").endswith("(it can become: verified, cancelled).")
    assert translate(template, listed, "zh_CN").endswith("（可改为：已核实、已取消）。")
    # and a message quoted inside another (a plugin's reason inside core's sentence) follows the language
    reason = UserErrorData.of("OUT_OF_RANGE", "{label} must not be empty.", None, label=_("Title"))
    quoted = DomainError(
        "PLUGIN_REJECTED", "The {plugin} plugin refused this change: {reason}", plugin="x", reason=reason
    )
    assert quoted.errors[0].message == "The x plugin refused this change: Title must not be empty."
    assert quoted.errors[0].localized("zh_CN") == "插件 x 拒绝了此更改：标题不能为空。"


def test_an_untranslated_template_falls_back_to_english() -> None:
    assert translate("Nobody translated {this}.", {"this": Text("me")}, "zh_CN") == "Nobody translated me."
    assert i18n.catalog("zh_CN").get("Nobody translated {this}.") is None


# -- through the endpoint ----------------------------------------------------------------------------------------


@pytest.fixture
async def http(engine: AsyncEngine, app_state: AppState, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine=engine, state=app_state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def _post(http: httpx.AsyncClient, body: Any, headers: Mapping[str, str], **kwargs: Any) -> tuple[int, Any]:
    response = await http.post("/graphql", json=body, headers=dict(headers), **kwargs)
    return response.status_code, response.json()


CREATE_ORGANIZATION = """mutation($name: String!) {
  createOrganization(input: {name: $name, kind: AGENCY}) { organization { id } errors { code field message } }
}"""


@pytest.mark.parametrize(
    ("name", "code", "chinese", "english"),
    [
        ("  ", "REQUIRED", "名称不能为空。", "Name must not be empty."),
        ("长" * 201, "OUT_OF_RANGE", "名称不能超过 200 个字符。", "Name is longer than 200 characters."),
    ],
)
async def test_a_payload_error_answers_in_the_callers_language(
    http: httpx.AsyncClient, name: str, code: str, chinese: str, english: str
) -> None:
    # given the same failing mutation
    body = {"query": CREATE_ORGANIZATION, "variables": {"name": name}}
    # when it is sent without Accept-Language, asking for English, and asking for Chinese
    answers = [await _post(http, body, headers) for headers in (DEFAULT, ENGLISH, CHINESE)]
    # then the code and field are the same each time, and the message is in the language asked for
    errors = [data["data"]["createOrganization"]["errors"] for _status, data in answers]
    assert [[(e["code"], e["field"]) for e in each] for each in errors] == [[(code, ["input", "name"])]] * 3
    assert [each[0]["message"] for each in errors] == [chinese, english, chinese]


# A query asking for millions of objects: refused by its cost, a top-level error without data.
COSTLY = """{ volunteers(first: 200) { nodes { assignments(first: 200) { nodes {
  request { community { helpRequests(first: 200) { nodes { id } } } } } } } } }"""


async def test_a_top_level_error_answers_in_the_callers_language(http: httpx.AsyncClient) -> None:
    # when the same too costly query is sent in each language
    answers = [await _post(http, {"query": COSTLY}, headers) for headers in (DEFAULT, ENGLISH, CHINESE)]
    # then the code and its extensions are the same, the message in the language asked for
    errors = [data["errors"] for _status, data in answers]
    assert {e[0]["extensions"]["code"] for e in errors} == {"QUERY_TOO_COSTLY"}
    assert errors[0][0]["extensions"] == errors[1][0]["extensions"] == errors[2][0]["extensions"]
    default, english, chinese = (e[0]["message"] for e in errors)
    assert english.startswith("This query may produce ")
    assert "the budget is 50000" in english
    assert default == chinese
    assert chinese.startswith("该查询可能返回 ")
    assert "超出了 50000 的预算" in chinese


async def test_a_refused_value_is_said_in_the_callers_language_after_graphql_cores_words(
    http: httpx.AsyncClient,
) -> None:
    # given a NUL character in a variable (refused by the String scalar while the variables are coerced)
    body = {"query": CREATE_ORGANIZATION, "variables": {"name": "a\u0000b"}}
    # when it is sent in each language
    (_s1, default), (_s2, english) = [await _post(http, body, headers) for headers in (DEFAULT, ENGLISH)]
    # then the code is INVALID_INPUT either way; our sentence follows the language, graphql-core's prefix stays
    assert default["errors"][0]["extensions"]["code"] == english["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert "Text must not contain the NUL character (U+0000)." in english["errors"][0]["message"]
    assert "文本不能包含空字符（U+0000）。" in default["errors"][0]["message"]
    assert default["errors"][0]["message"].startswith("Variable '$name'")


async def test_a_limit_refusal_is_translated(http: httpx.AsyncClient) -> None:
    deep = "{ helpRequests(first: 1) { nodes { " + "assignments { request { " * 20 + "id" + " } }" * 20 + " } } }"
    (_s1, default), (_s2, english) = [await _post(http, {"query": deep}, h) for h in (DEFAULT, ENGLISH)]
    assert default["errors"][0]["extensions"]["code"] == english["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert "exceeds maximum operation depth" in english["errors"][0]["message"]
    assert default["errors"][0]["message"].startswith("查询的嵌套层级超过了")


@pytest.fixture
async def signed_in_only(engine: AsyncEngine, clock: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The service as deployed: callers are who their bearer token says (anonymous without one)."""
    host = build_plugin_host(entry_points=False)
    settings = Settings()
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    state.authenticate = bearer_authenticator(state)
    app = create_app(settings, engine=engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_refusals_at_the_edge_answer_in_the_callers_language(signed_in_only: httpx.AsyncClient) -> None:
    http = signed_in_only
    query = {"query": "{ stats { volunteersTotal } }"}
    # when credentials of the wrong scheme, a body that is not JSON, and an anonymous mutation are sent
    wrong = [
        await http.post("/graphql", json=query, headers={"authorization": "Basic abc", **h})
        for h in (DEFAULT, ENGLISH, CHINESE)
    ]
    # then each is refused with the same status and code, in the language asked for
    assert [r.status_code for r in wrong] == [401, 401, 401]
    assert {r.json()["errors"][0]["extensions"]["code"] for r in wrong} == {"UNAUTHENTICATED"}
    assert [r.json()["errors"][0]["message"] for r in wrong] == [
        "请使用 `Authorization: Bearer <令牌>`。",
        "Use `Authorization: Bearer <token>`.",
        "请使用 `Authorization: Bearer <令牌>`。",
    ]
    garbled = [
        await http.post("/graphql", content=b"{not json", headers={"content-type": "application/json", **h})
        for h in (DEFAULT, ENGLISH)
    ]
    assert [r.status_code for r in garbled] == [400, 400]
    assert {r.json()["errors"][0]["extensions"]["code"] for r in garbled} == {"INVALID_REQUEST"}
    assert [r.json()["errors"][0]["message"] for r in garbled] == [
        "不是有效的 JSON（须为 UTF-8；不可含 NaN 或 Infinity；数值不得超出双精度范围）。",
        "Not valid JSON (UTF-8; no NaN or Infinity; numbers within a double's range).",
    ]
    mutation = {"query": CREATE_ORGANIZATION, "variables": {"name": "甲"}}
    anonymous = [await _post(http, mutation, h) for h in (DEFAULT, ENGLISH)]
    payloads = [data["data"]["createOrganization"]["errors"] for _status, data in anonymous]
    assert [p[0]["code"] for p in payloads] == ["UNAUTHENTICATED", "UNAUTHENTICATED"]
    assert [p[0]["message"] for p in payloads] == ["请先登录。", "Sign in first."]
