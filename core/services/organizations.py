"""Organisations and districts: the reference data communities and volunteers hang on."""

from __future__ import annotations

from sqlalchemy import select

from core.errors import Validator
from core.i18n import _
from core.models import District, Organization
from core.services import access
from core.services import validation as check
from core.services.common import flush
from core.services.context import ServiceContext
from core.vocab import DistrictKind, OrganizationKind


async def create_organization(ctx: ServiceContext, *, name: str, kind: OrganizationKind) -> Organization:
    access.require(ctx, "reference.manage")
    v = Validator()
    clean_name = check.text(v, ("input", "name"), name, max_length=200, label=_("Name"))
    v.raise_if_any()
    org = Organization(name=clean_name, kind=kind.value)
    ctx.session.add(org)
    await flush(ctx)
    return org


async def create_district(ctx: ServiceContext, *, name: str, kind: DistrictKind) -> District:
    access.require(ctx, "reference.manage")
    v = Validator()
    clean_name = check.text(v, ("input", "name"), name, max_length=100, label=_("Name"))
    v.raise_if_any()
    district = District(name=clean_name, kind=kind.value)
    ctx.session.add(district)
    await flush(ctx)
    return district


async def list_districts(ctx: ServiceContext) -> list[District]:
    access.require_signed_in(ctx)
    return list((await ctx.session.scalars(select(District).order_by(District.id))).all())


async def list_organizations(ctx: ServiceContext) -> list[Organization]:
    access.require_signed_in(ctx)
    return list((await ctx.session.scalars(select(Organization).order_by(Organization.id))).all())
