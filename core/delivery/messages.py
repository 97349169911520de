"""Outbox rows as channels see them (`core.Message`): the worker builds them to route and send, the
administrators' list to show each recipient (masked there)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.channel import Contact, Message
from core.models import Account, Notification, Volunteer


async def load(session: AsyncSession, rows: Iterable[Notification]) -> list[Message]:
    """Messages for `rows`, in order, with their recipients' names and phones, read in two statements for the
    whole batch (row-level security applies: the session acts for the rows' organisation)."""
    rows = list(rows)
    volunteer_ids = {r.volunteer_id for r in rows if r.volunteer_id is not None}
    account_ids = {r.account_id for r in rows if r.account_id is not None}
    accounts: dict[int, Any] = {}
    if account_ids:
        found = await session.execute(
            select(Account.id, Account.display_name, Account.volunteer_id).where(Account.id.in_(account_ids))
        )
        accounts = {a.id: a for a in found}
        volunteer_ids |= {a.volunteer_id for a in accounts.values() if a.volunteer_id is not None}
    volunteers: dict[int, Any] = {}
    if volunteer_ids:
        found = await session.execute(
            select(Volunteer.id, Volunteer.name, Volunteer.phone).where(Volunteer.id.in_(volunteer_ids))
        )
        volunteers = {v.id: v for v in found}
    out = []
    for r in rows:
        contact = Contact(name=r.recipient_name, phone=r.recipient_phone)
        if r.account_id is not None and (account := accounts.get(r.account_id)) is not None:
            volunteer = volunteers.get(account.volunteer_id) if account.volunteer_id else None
            contact = Contact(
                name=account.display_name, phone=volunteer.phone if volunteer else "", account_id=r.account_id
            )
        elif r.volunteer_id is not None and (volunteer := volunteers.get(r.volunteer_id)) is not None:
            contact = Contact(name=volunteer.name, phone=volunteer.phone, volunteer_id=r.volunteer_id)
        out.append(
            Message(
                notification_id=r.id,
                organization_id=r.organization_id,
                kind=r.kind,
                source=r.source,
                recipient=contact,
                payload=dict(r.payload or {}),
                created_at=r.created_at,
            )
        )
    return out
