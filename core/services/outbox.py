"""The one outbox: every message core or a plugin wants delivered (an offer to a volunteer, a lecture
reminder to a mother) is a row of `notifications`, written in the transaction of the change that caused it
(nothing sent for a rolled-back change, nothing lost for a committed one). Delivery channels pick rows up
later (SELECT … FOR UPDATE SKIP LOCKED); delivery itself is the realtime issue's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from core.errors import DomainError
from core.models import Notification
from core.services.common import flush
from core.services.context import ServiceContext


@dataclass(frozen=True)
class Recipient:
    """Who a message is for: a volunteer, an account, or a person known only by name and phone (a mother, a
    requester without an account). Exactly one of the three."""

    volunteer_id: int | None = None
    account_id: int | None = None
    name: str = ""
    phone: str = ""

    @classmethod
    def volunteer(cls, volunteer_id: int) -> Recipient:
        return cls(volunteer_id=volunteer_id)

    @classmethod
    def account(cls, account_id: int) -> Recipient:
        return cls(account_id=account_id)

    @classmethod
    def person(cls, name: str, phone: str) -> Recipient:
        return cls(name=name, phone=phone)


async def notify(
    ctx: ServiceContext,
    kind: str,
    recipient: Recipient,
    payload: dict[str, Any] | None = None,
    *,
    source: str = "core",
    dedupe_key: str | None = None,
) -> bool:
    """Queue a message in the caller's transaction. `kind` is `<source>.<what>` for plugins
    (`maternal_care.lecture_reminder`); `dedupe_key` (unique per organisation) makes a repeated call — a job
    running again — queue nothing more. Returns whether a row was queued. The row belongs to the recipient's
    organisation (a volunteer's or an account's), else to the caller's."""
    chosen = [recipient.volunteer_id is not None, recipient.account_id is not None, bool(recipient.phone.strip())]
    if sum(chosen) != 1:
        raise DomainError("INVALID_INPUT", "A message goes to one volunteer, account or person.", ("recipient",))
    if source != "core" and not kind.startswith(f"{source}."):
        raise DomainError("INVALID_INPUT", "A {source} message kind starts with '{source}.'.", ("kind",), source=source)
    values = {
        "volunteer_id": recipient.volunteer_id,
        "account_id": recipient.account_id,
        "recipient_name": recipient.name.strip()[:100],
        "recipient_phone": recipient.phone.strip()[:32],
        "kind": kind,
        "source": source,
        "dedupe_key": dedupe_key,
        "payload": payload or {},
    }
    if dedupe_key is None:
        ctx.session.add(Notification(**values))
        await flush(ctx)
        return True
    stmt = (
        insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(constraint="uq_notifications_organization_id_dedupe_key")
        .returning(Notification.id)
    )
    return (await ctx.session.scalar(stmt)) is not None


async def pending(ctx: ServiceContext, limit: int = 100) -> list[Notification]:
    """Undelivered messages of the caller's organisation, oldest first (for channels and tests)."""
    stmt = select(Notification).where(Notification.delivered_at.is_(None)).order_by(Notification.id).limit(limit)
    return list((await ctx.session.scalars(stmt)).all())
