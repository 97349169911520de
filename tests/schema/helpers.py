"""Small helpers for GraphQL tests."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import models
from schema import ids


def gid(type_name: str, pk: int) -> str:
    return ids.encode(type_name, pk)


async def row_counts(session: AsyncSession) -> dict[str, int]:
    """How many rows each core table holds: proves a failed mutation wrote nothing."""
    tables = [
        models.Community,
        models.Volunteer,
        models.HelpRequest,
        models.HelpRequestStatusChange,
        models.Assignment,
        models.CommunityLiaison,
        models.VolunteerCredential,
        models.District,
    ]
    out = {}
    for model in tables:
        out[model.__tablename__] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    await session.commit()
    return out
