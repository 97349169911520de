"""The maternal-care follow-ups' rows of the permission matrix (tests/schema/test_plugin_access.py), built on
the registry's part (tests/plugins/maternal_care/access_rows.py, whose `build` must run first: its pregnancies,
20 weeks along, generated their prenatal items).

Follow-ups are health details: the same cells as the registry's pregnancies -- those who serve the mother in
her organisation (her social worker, A's administrators; the platform administrator's account is of A) see
A's; B's administrator sees B's; counselors, community heads, volunteers and partners hold no maternal-care
permission (FORBIDDEN on root fields, null by node); another organisation sees nothing (NOT_FOUND, null)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from sqlalchemy import select

from core.models import AvailabilityWindow
from plugins.maternal_care.followups.models import FollowUp
from schema import ids
from tests.plugin_access import OK, N, PluginWorld, Read, Write, node
from tests.plugins.maternal_care.access_rows import PERMISSIONS, TAG, _fresh_mother, by_node, served


async def build(p: PluginWorld) -> None:
    """A's and B's 16-20 week checks (`followup_a`, `followup_b`); the world's social worker's calendar open
    07:00-21:00 every day (for the booking row)."""
    for org in ("a", "b"):
        async with p.staff(org, extra_permissions=PERMISSIONS) as ctx:
            found = await ctx.session.scalar(
                select(FollowUp.id).where(
                    FollowUp.pregnancy_id == p.pk[f"pregnancy_{org}"], FollowUp.rule_code == "prenatal_2"
                )
            )
            assert found is not None
            p.pk[f"followup_{org}"] = found
    async with p.staff("a") as ctx:
        for weekday in range(7):
            ctx.session.add(
                AvailabilityWindow(
                    owner_id=p.w.ids["v_sw"],
                    weekday=weekday,
                    start_time=time(7),
                    end_time=time(21),
                    organization_id=p.pk["org_a"],
                )
            )


def _tagged(d: Any) -> list[tuple[str, str]]:
    return sorted(
        (n["rule"], n["pregnancy"]["mother"]["name"])
        for n in d["nodes"]
        if (n["pregnancy"]["mother"]["name"] or "")[:1] in TAG.values()
    )


PRENATAL = ("prenatal_2", "prenatal_3", "prenatal_4", "prenatal_5")

READS: list[Read] = [
    Read(
        "maternalCareOverdueFollowUps: a year ahead, every prenatal item of the mothers one serves",
        "query($d: Date) { r: maternalCareOverdueFollowUps(asOf: $d, first: 100) { nodes { rule "
        "pregnancy { mother { name } } } } }",
        lambda p: {"d": (p.monday + timedelta(days=365)).date().isoformat()},
        _tagged,
        served([(r, "甲孕妇") for r in PRENATAL], [(r, "乙孕妇") for r in PRENATAL]),
    ),
    Read(
        "maternalCareFollowUps of A's pregnancy: those who serve her; another organisation NOT_FOUND",
        "query($id: ID!) { r: maternalCareFollowUps(filter: {pregnancyId: $id}, first: 20) { nodes { rule } } }",
        lambda p: {"id": p.gid("MaternalCarePregnancy", "pregnancy_a")},
        lambda d: [n["rule"] for n in d["nodes"]],
        served(list(PRENATAL), N),
    ),
    Read(
        "MaternalCareFollowUp node: window and status",
        *node("MaternalCareFollowUp", "followup_a", "rule status windowEnd", lambda d: (d["rule"], d["status"])),
        by_node(("prenatal_2", "OPEN")),
    ),
]


def _m(name: str, input_type: str) -> str:
    return f"mutation($input: {input_type}!) {{ r: {name}(input: $input) {{ errors {{ code }} }} }}"


async def _fresh_item(p: PluginWorld) -> str:
    """The 'before 13 weeks' check of a new pregnancy of A, 12 weeks along (its window open)."""
    _, pregnancy = await _fresh_mother(p, pregnant=True)
    async with p.staff("a", extra_permissions=PERMISSIONS) as ctx:
        found = await ctx.session.scalar(
            select(FollowUp.id).where(FollowUp.pregnancy_id == pregnancy, FollowUp.rule_code == "prenatal_1")
        )
    assert found is not None
    return ids.encode("MaternalCareFollowUp", found)


async def _book(p: PluginWorld) -> dict[str, Any]:
    return {
        "input": {
            "id": await _fresh_item(p),
            "start": p.slot().isoformat(),
            "minutes": 30,
            "staffId": ids.encode("Account", p.pk["account_social_worker"]),
        }
    }


async def _record(p: PluginWorld) -> dict[str, Any]:
    return {"input": {"id": await _fresh_item(p), "outcome": "NORMAL", "note": "w-正常"}}


async def _miss(p: PluginWorld) -> dict[str, Any]:
    return {"input": {"id": await _fresh_item(p), "note": "w-未到"}}


ON_A = served(OK, N)

WRITES: list[Write] = [
    Write(
        "maternalCareBookFollowUp of A's mother on her social worker's calendar",
        _m("maternalCareBookFollowUp", "MaternalCareBookFollowUpInput"),
        _book,
        ON_A,
    ),
    Write(
        "maternalCareRecordFollowUp (normal) of A's mother",
        _m("maternalCareRecordFollowUp", "MaternalCareRecordFollowUpInput"),
        _record,
        ON_A,
    ),
    Write(
        "maternalCareMissFollowUp of A's mother",
        _m("maternalCareMissFollowUp", "MaternalCareMissFollowUpInput"),
        _miss,
        ON_A,
    ),
]
