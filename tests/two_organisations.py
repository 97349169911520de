"""The two-organisation world plugin tests build on: organisations A and B (one district), a community each,
and an account per test caller, with the plugin roles their permissions stand for.

One builder for every plugin's test world (casework, maternal care), so a change to how accounts are made
(a new required column, a volunteer record) is made once."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.models import Account, AccountPluginRole, Community
from core.services import communities, organizations
from core.services.context import ServiceContext, Viewer
from core.vocab import DistrictKind, OrganizationKind

_serial = itertools.count(1)


async def build(
    engine: AsyncEngine,
    clock: Any,
    callers: Mapping[str, tuple[str, str, frozenset[str]]],
    ids: dict[str, int],
    *,
    plugin_roles: Mapping[str, str],
) -> None:
    """Fill `ids` with org_a/org_b, community_a/community_b and one account id per caller. `callers`: name ->
    (core role, organisation key "a"/"b", plugin permissions); `plugin_roles`: permission -> the plugin role
    granted to every caller holding it. Volunteers get a volunteer record (their account's scope)."""
    builder = Viewer(label="builder", role="platform_admin")
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=builder, clock=clock)
        district = await organizations.create_district(ctx, name=f"区{next(_serial)}", kind=DistrictKind.DISTRICT)
        for key in ("a", "b"):
            org = await organizations.create_organization(
                ctx, name=f"机构{next(_serial)}", kind=OrganizationKind.AGENCY
            )
            ids[f"org_{key}"] = org.id
            community: Community = await communities.create_community(
                ctx,
                communities.CommunityInput(
                    name=f"社区{next(_serial)}", district_id=district.id, organization_id=org.id, head_name="主任"
                ),
            )
            ids[f"community_{key}"] = community.id
        for who, (role, org, permissions) in callers.items():
            account = Account(
                username=f"{who}-{next(_serial)}",
                display_name=who,
                password_hash="-",
                role=role,
                organization_id=ids[f"org_{org}"],
                community_id=ids[f"community_{org}"] if role == "community_head" else None,
            )
            if role == "volunteer":
                from core.services import volunteers
                from core.vocab import VolunteerMode

                person = await volunteers.register_volunteer(
                    ctx,
                    volunteers.VolunteerInput(
                        name=who,
                        phone=f"1390000{next(_serial):04d}",
                        mode=VolunteerMode.OFFLINE,
                        organization_id=ids[f"org_{org}"],
                    ),
                )
                account.volunteer_id = person.id
            session.add(account)
            await session.flush()
            ids[who] = account.id
            for permission, plugin_role in plugin_roles.items():
                if permission in permissions:
                    session.add(
                        AccountPluginRole(
                            account_id=account.id,
                            role=plugin_role,
                            granted_by="builder",
                            organization_id=account.organization_id,
                        )
                    )
