"""Urgent needs' rows of the permission matrix (tests/schema/test_plugin_access.py), and their records in the
matrix's world (after the registry's `build`: maternal care is enabled there).

Raising a need copies the mother's contact into a core help request: only those who serve her and see her
contact in full may (the world's social worker, her assigned one, who also serves c1 for core); administrators
read her contact masked (FORBIDDEN), another organisation finds no mother (NOT_FOUND), the rest hold no
maternal-care permission (FORBIDDEN). `MaternalCareMother.urgentNeeds` is a health detail: those who read
her health details see it, with the request where core shows it to them; everyone else gets a null node.

Wiring (the lead's): import this module in tests/schema/test_plugin_access.py and add `build`, READS and WRITES
after the registry's (maternal_care_rows)."""

from __future__ import annotations

from typing import Any

from core.models import HelpRequest
from core.services import help_requests
from core.vocab import RequestCategory, Urgency
from plugins.maternal_care.models import Mother
from plugins.maternal_care.needs.models import UrgentNeed
from plugins.maternal_care.registry import services as mc
from plugins.maternal_care.registry.types import MaternalCareMother
from schema import ids
from tests.plugin_access import NULL, OK, UNIQUE, F, N, PluginWorld, Read, Write, managers, node, per_role

PERMISSIONS = frozenset({mc.MANAGE, mc.HEALTH, mc.LECTURES})
WHAT = "甲婴儿配方奶粉"


async def _mother_in_c1(p: PluginWorld) -> Mother:
    """A new mother of A living in c1 (which the world's social worker serves), assigned to that worker."""
    async with p.staff("a", extra_permissions=PERMISSIONS) as ctx:
        mother: Mother = await mc.register_mother(
            ctx,
            consent=True,
            social_worker_account_id=p.pk["account_social_worker"],
            name=f"w-孕妇{next(UNIQUE)}",
            phone="13700007777",
            community_id=p.pk["c1"],
        )
        return mother


async def build(p: PluginWorld) -> None:
    """A mother of A in c1 with one urgent need (a help request submitted by A's administrator, linked)."""
    mother = await _mother_in_c1(p)
    async with p.staff("a", extra_permissions=PERMISSIONS) as ctx:
        request: HelpRequest = await help_requests.submit(
            ctx,
            help_requests.HelpRequestInput(
                community_id=p.pk["c1"],
                title=WHAT,
                category=RequestCategory.FOOD,
                urgency=Urgency.CRITICAL,
                requester_name="w-孕妇",
                requester_phone="13700007777",
            ),
        )
        ctx.session.add(
            UrgentNeed(
                mother_id=mother.id,
                help_request_id=request.id,
                beneficiary="infant",
                what=WHAT,
                quantity=6,
                raised_by="a staff",
                organization_id=mother.organization_id,
            )
        )
    p.pk["mc_needy_mother_a"] = mother.id


async def _raise(p: PluginWorld) -> dict[str, Any]:
    mother = await _mother_in_c1(p)
    return {
        "input": {
            "motherId": ids.encode("MaternalCareMother", mother.id),
            "category": "FOOD",
            "urgency": "CRITICAL",
            "what": "w-奶粉",
            "quantity": 2,
            "beneficiary": "INFANT",
        }
    }


_HAS_FIELD = any(f.python_name == "urgent_needs" for f in MaternalCareMother.__strawberry_definition__.fields)

READS: list[Read] = (
    [
        Read(
            "MaternalCareMother.urgentNeeds: for those who read her health details; the request as core shows it",
            *node(
                "MaternalCareMother",
                "mc_needy_mother_a",
                "urgentNeeds { what quantity helpRequest { title } }",
                lambda d: [(n["what"], n["quantity"], (n["helpRequest"] or {}).get("title")) for n in d["urgentNeeds"]],
            ),
            per_role(
                anonymous=NULL,
                platform_admin=[(WHAT, 6, WHAT)],
                org_admin_a=[(WHAT, 6, WHAT)],
                org_admin_b=NULL,
                social_worker=[(WHAT, 6, WHAT)],
                counselor=NULL,
                community_head=NULL,
                volunteer=NULL,
                partner_a=NULL,
            ),
        )
    ]
    if _HAS_FIELD  # wired in registry/types.py by the lead (see the report)
    else []
)

WRITES: list[Write] = [
    Write(
        "maternalCareRaiseUrgentNeed: those who serve the mother (her contact in full), for a community core lets "
        "them post for",
        "mutation($input: MaternalCareRaiseUrgentNeedInput!) { r: maternalCareRaiseUrgentNeed(input: $input) { "
        "need { what } errors { code } } }",
        _raise,
        managers(F, N, F, social_worker=OK),
    ),
]
