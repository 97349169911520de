"""A plugin that adds a field to a core type (`HelpRequest.annotatorLabel`): what casework's
`HelpRequest.caseWork…` fields will do."""

from __future__ import annotations

import strawberry
from strawberry import Info

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="annotator", version="1.0")


@strawberry.type
class AnnotatorHelpRequestFields:
    @strawberry.field(description="A label the annotator plugin gives the request (null where not enabled).")
    async def annotator_label(self, info: Info) -> str | None:
        # `self` is core's HelpRequest object.
        return f"标签：{self.title}"  # type: ignore[attr-defined]


@strawberry.type
class AnnotatorQuery:
    @strawberry.field
    async def annotator_version(self, info: Info) -> str:
        return "1.0"


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    return core.GraphQLContribution(query=AnnotatorQuery, type_fields={"HelpRequest": AnnotatorHelpRequestFields})
