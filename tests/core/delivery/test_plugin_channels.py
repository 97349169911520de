"""Channels registered by plugins (hook register_channels): used where the plugin is enabled, checked at startup."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import core
from core.database import create_sessionmaker
from core.delivery import build_worker, plugin_channels
from core.plugins import PluginLoadError, build_plugin_host
from core.settings import Settings
from tests.core.delivery.support import Recording, queue
from tests.factories import Factory


class Pager:
    """A third-party plugin registering one channel, through the public API only (`core.*`)."""

    def __init__(self, *channels: Any) -> None:
        self.channels = list(channels)

    @core.hookimpl
    def register_plugin(self) -> core.PluginInfo:
        return core.PluginInfo(name="pager", version="1.0")

    @core.hookimpl
    def register_channels(self) -> list[Any]:
        return self.channels


async def test_a_plugin_channel_carries_the_messages_of_organisations_that_enabled_the_plugin(
    make: Factory, engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    # given a plugin's channel, an organisation that enabled the plugin and one that did not (home)
    channel = Recording(name="pager.sms")
    host = build_plugin_host(entry_points=False, builtins=(), extra=[Pager(channel)])
    using = await make.organization_using("pager")
    home = await queue(make.ctx, 1, phone_prefix="1380000")
    mine = sorted(set(await queue(make.in_org(using.id).ctx, 2)) - set(home))
    # when the service's worker runs
    worker = build_worker(create_sessionmaker(engine), Settings(), host, clock=clock)
    assert [c.name for c in worker.channels] == ["log", "webhook", "pager.sms"]
    await worker.run_once()
    # then the plugin's channel got the enabling organisation's messages only
    assert sorted(channel.counts()) == mine


@pytest.mark.parametrize(
    ("channels", "complaint"),
    [
        ([Recording(name="sms")], "must be 'pager' or 'pager.<what>'"),
        ([Recording(name="pager.Bad")], "must be 'pager' or 'pager.<what>'"),
        ([Recording(name="pager"), Recording(name="pager")], "registered twice"),
        ([object()], "is not a channel"),
    ],
)
def test_a_malformed_channel_stops_startup_naming_the_plugin(channels: list[Any], complaint: str) -> None:
    host = build_plugin_host(entry_points=False, builtins=(), extra=[Pager(*channels)])
    with pytest.raises(PluginLoadError, match="plugin 'pager'") as refused:
        plugin_channels(host)
    assert complaint in str(refused.value)
