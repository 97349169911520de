"""Test plugin `ticker`: contributes a subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

import core


@strawberry.type
class TickerSubscription:
    @strawberry.subscription
    async def ticker_ticks(self, count: int = 3) -> AsyncGenerator[int, None]:
        for i in range(count):
            yield i


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="ticker", version="0.1")


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    return core.GraphQLContribution(subscription=TickerSubscription)
