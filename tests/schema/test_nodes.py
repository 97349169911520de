"""node(id:) and nodes(ids:): one bad ID is an INVALID_ID error at its own place, never a blank answer."""

from __future__ import annotations

from strawberry.relay import GlobalID

from tests.conftest import GraphQLClient
from tests.factories import Factory
from tests.schema.helpers import gid

NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on HelpRequest { title } ... on Community { name } } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on HelpRequest { title } } }"
UNKNOWN_TYPE = str(GlobalID("Nope", "1"))
NOT_A_NODE = str(GlobalID("PageInfo", "1"))


async def test_nodes_answers_every_good_id_beside_bad_ones(gql: GraphQLClient, make: Factory) -> None:
    # given a request and a community, and IDs that are malformed, of no type, of a non-node type, unknown
    request = await make.request(title="送药")
    community = await make.community(name="粉巷社区")
    await make.commit()
    good_request, good_community = gid("HelpRequest", request.id), gid("Community", community.id)
    ids = [good_request, "garbage", UNKNOWN_TYPE, good_community, NOT_A_NODE, gid("HelpRequest", 987654321), ""]
    # when they are asked for together
    body = await gql.raw(NODES, {"ids": ids})
    # then the good ones are answered in place, unknown ones are null, and each malformed one is an
    # INVALID_ID error at its own index
    assert body["data"]["nodes"] == [
        {"id": good_request, "title": "送药"},
        None,
        None,
        {"id": good_community, "name": "粉巷社区"},
        None,
        None,
        None,
    ]
    located = sorted((e["path"][1], e["extensions"]["code"]) for e in body["errors"])
    assert located == [(1, "INVALID_ID"), (2, "INVALID_ID"), (4, "INVALID_ID"), (6, "INVALID_ID")]


async def test_node_with_a_bad_id_is_an_invalid_id_error(gql: GraphQLClient) -> None:
    for bad in ("garbage", UNKNOWN_TYPE, NOT_A_NODE, ""):
        body = await gql.raw(NODE, {"id": bad})
        assert body["data"] == {"node": None}, bad
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_ID"], bad
    # and an ID of nothing is simply null, no error
    assert await gql.raw(NODE, {"id": gid("HelpRequest", 987654321)}) == {"data": {"node": None}}


async def test_nodes_takes_at_most_a_page_of_ids(gql: GraphQLClient, make: Factory, settings) -> None:  # type: ignore[no-untyped-def]
    # given a request and the largest page size
    request = await make.request(title="送药")
    await make.commit()
    limit = settings.max_page_size
    # when exactly a page of IDs is asked for, then it is answered
    body = await gql.raw(NODES, {"ids": [gid("HelpRequest", request.id)] * limit})
    assert len(body["data"]["nodes"]) == limit
    assert "errors" not in body
    # when one more is asked for, then nothing is looked up: a typed refusal on `ids`
    body = await gql.raw(NODES, {"ids": [gid("HelpRequest", request.id)] * (limit + 1)})
    assert body["data"] is None
    assert [(e["extensions"]["code"], e["extensions"].get("field")) for e in body["errors"]] == [
        ("PAGE_SIZE_EXCEEDED", ["ids"])
    ]
