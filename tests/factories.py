"""Builders for test data, through the services (so test data obeys the same rules as real input)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta
from typing import Any

from core.models import Community, District, HelpRequest, Organization, Volunteer
from core.services import assignments, communities, help_requests, organizations, plugins, volunteers
from core.services.context import ServiceContext
from core.vocab import DistrictKind, OrganizationKind, RequestCategory, RequestStatus, Urgency, VolunteerMode

_seq = itertools.count(1)


def mobile(n: int | None = None) -> str:
    return f"139{(n if n is not None else next(_seq)):08d}"


class Factory:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def commit(self) -> None:
        await self.ctx.session.commit()

    def in_org(self, organization_id: int) -> Factory:
        """A factory whose records belong to `organization_id` (same session, same caller otherwise)."""
        viewer = dataclasses.replace(self.ctx.viewer, organization_id=organization_id)
        return Factory(dataclasses.replace(self.ctx, viewer=viewer))

    async def organization_using(self, plugin: str, name: str | None = None) -> Organization:
        """An organisation that has enabled `plugin` (committed)."""
        org = await organizations.create_organization(
            self.ctx, name=name or f"机构{next(_seq)}", kind=OrganizationKind.AGENCY
        )
        await plugins.set_enabled(
            self.ctx,
            organization_id=org.id,
            plugin=plugin,
            enabled=True,
            installed=frozenset({plugin}),
            known=frozenset({plugin}),
        )
        await self.commit()
        return org

    async def district(self, name: str | None = None) -> District:
        d = await organizations.create_district(self.ctx, name=name or f"区{next(_seq)}", kind=DistrictKind.DISTRICT)
        await self.commit()
        return d

    async def community(self, district: District | None = None, **kw: Any) -> Community:
        district = district or await self.district()
        data = communities.CommunityInput(
            name=kw.pop("name", f"社区{next(_seq)}"),
            district_id=district.id,
            latitude=kw.pop("latitude", 34.25),
            longitude=kw.pop("longitude", 108.94),
            **kw,
        )
        c = await communities.create_community(self.ctx, data)
        await self.commit()
        return c

    async def volunteer(self, **kw: Any) -> Volunteer:
        data = volunteers.VolunteerInput(
            name=kw.pop("name", f"志愿者{next(_seq)}"),
            phone=kw.pop("phone", mobile()),
            mode=kw.pop("mode", VolunteerMode.OFFLINE),
            **kw,
        )
        v = await volunteers.register_volunteer(self.ctx, data)
        await self.commit()
        return v

    async def request(
        self, community: Community | None = None, status: RequestStatus = RequestStatus.SUBMITTED, **kw: Any
    ) -> HelpRequest:
        """A request walked through the lifecycle up to `status` (with volunteers where a status needs them)."""
        community = community or await self.community()
        data = help_requests.HelpRequestInput(
            community_id=community.id,
            title=kw.pop("title", "需要送药"),
            category=kw.pop("category", RequestCategory.MEDICINE),
            urgency=kw.pop("urgency", Urgency.HIGH),
            requester_name=kw.pop("requester_name", "张三"),
            requester_phone=kw.pop("requester_phone", mobile()),
            needed_by=kw.pop("needed_by", self.ctx.now() + timedelta(hours=12)),
            **kw,
        )
        r = await help_requests.submit(self.ctx, data)
        path = {
            RequestStatus.VERIFIED: 1,
            RequestStatus.MATCHED: 2,
            RequestStatus.IN_PROGRESS: 3,
            RequestStatus.FULFILLED: 4,
        }.get(status, 0)
        if path >= 1:
            await help_requests.verify(self.ctx, r.id)
        if path >= 2:
            volunteer = await volunteers.register_volunteer(
                self.ctx, volunteers.VolunteerInput(name="司机", phone=mobile(), mode=VolunteerMode.OFFLINE)
            )
            offer = await assignments.offer(self.ctx, r.id, volunteer.id)
            if path >= 3:
                await assignments.accept(self.ctx, offer.id)
                await help_requests.start(self.ctx, r.id)
            if path >= 4:
                await help_requests.fulfil(self.ctx, r.id)
        if status == RequestStatus.REJECTED:
            await help_requests.reject(self.ctx, r.id, "duplicate")
        if status == RequestStatus.CANCELLED:
            await help_requests.cancel(self.ctx, r.id, "no longer needed")
        await self.commit()
        await self.ctx.session.refresh(r)
        return r
