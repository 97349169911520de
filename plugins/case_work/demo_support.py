"""What the casework demo's parts share: acting as one of the demo's accounts."""

from __future__ import annotations

import dataclasses

import core
from core.models import Account


def acting(ctx: core.ServiceContext, account: Account, role: str, permissions: frozenset[str]) -> core.ServiceContext:
    """`ctx` as `account` with `role` and `permissions` (a fresh memo: nothing remembered for another caller)."""
    viewer = core.Viewer(
        label=account.display_name,
        account_id=account.id,
        organization_id=account.organization_id,
        role=role,
        extra_permissions=permissions,
    )
    return dataclasses.replace(ctx, viewer=viewer, memo={})
