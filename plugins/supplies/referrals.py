"""Supplies as a destination of referrals (core's `register_referral_targets` hook).

A social worker (of this or another organisation) refers a resident who needs goods -- formula for a new
mother, a food parcel for an elderly person living alone -- to an organisation's supplies service. The
organisation's supplies staff (`supplies.manage`) read the summary, accept or decline it, and complete it
once the goods went out.

No `on_accepted`: supplies has no record of a person to create. What it keeps about recipients is a
distribution (`Distribution.recipient`, a name on a delivery from one warehouse), and a distribution needs a
warehouse, items and quantities chosen by the staff member -- something to plan after accepting, not
something the acceptance itself could make up. So an accepted referral to supplies keeps nothing beyond
core's referral row, and copies nothing about the resident (core's `SharedResident` is not read at all).
"""

from __future__ import annotations

import core

TARGET = "supplies"
RECEIVING_PERMISSION = "supplies.manage"


def referral_targets() -> list[core.ReferralTarget]:
    return [
        core.ReferralTarget(
            TARGET,
            "Goods for the referred resident (food, medicine, infant supplies), planned as a distribution.",
            RECEIVING_PERMISSION,
        )
    ]
