"""Column helpers shared by the core models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, func
from sqlalchemy.orm import Mapped, mapped_column


def pk() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(always=False), primary_key=True)


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def updated_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False)


def enum_check(column: str, values: object, name: str | None = None) -> CheckConstraint:
    from core.vocab import sql_in

    return CheckConstraint(f"{column} IN ({sql_in(values)})", name=name or f"{column}_valid")  # type: ignore[arg-type]


def latlng_checks() -> tuple[CheckConstraint, ...]:
    return (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="latlng_together"),
    )
