"""The maternal-care follow-ups' rows of the permission matrix (tests/schema/test_plugin_access.py), built on
the registry's part (tests/plugins/maternal_care/access_rows.py, whose `build` must run first: its pregnancies,
20 weeks along, generated their prenatal items).

Follow-ups are health details: the same cells as the registry's pregnancies -- those who serve the mother in
her organisation (her social worker, A's administrators; the platform administrator's account is of A) see
A's; B's administrator sees B's; community heads, volunteers and partners hold no maternal-care permission
(FORBIDDEN on root fields, null by node); another organisation sees nothing (NOT_FOUND, null). A counselor
may be named responsible for a pregnancy and then reads its follow-ups (`pregnancy_named`: a mother of A
served by another social worker, orange, the world's counselor responsible): she asks for a pregnancy's
follow-ups (NOT_FOUND for one not naming her), while the world's social worker, who does not serve that
mother, finds nothing. Writes and the overdue list stay with the manage permission."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from sqlalchemy import select

from core.models import Account, AvailabilityWindow
from plugins.maternal_care.followups.models import FollowUp
from plugins.maternal_care.registry import services as mc
from schema import ids
from tests.plugin_access import NULL, OK, UNIQUE, F, N, PluginWorld, Read, U, Write, node, per_role
from tests.plugins.maternal_care.access_rows import PERMISSIONS, TAG, _fresh_mother, _today, by_node, served


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
    # A mother of A served by another social worker ("w-…": the lists' rows leave her out), her pregnancy
    # graded orange with the world's counselor responsible.
    async with p.staff("a", extra_permissions=PERMISSIONS) as ctx:
        other = Account(
            username=f"mc-fu-sw-a-{next(UNIQUE)}",
            display_name="甲随访社工",
            password_hash="-",
            role="social_worker",
            organization_id=p.pk["org_a"],
        )
        ctx.session.add(other)
        await ctx.session.flush()
        mother = await mc.register_mother(
            ctx, consent=True, social_worker_account_id=other.id, name=f"w-负责孕妇{next(UNIQUE)}"
        )
        named = await mc.register_pregnancy(
            ctx,
            mother.id,
            lmp=_today() - timedelta(weeks=20),
            grade=mc.Grade("orange", responsible_account_id=p.pk["account_counselor"]),
            reason="w-双胎",
        )
        p.pk["pregnancy_named"] = named.id
        found = await ctx.session.scalar(
            select(FollowUp.id).where(FollowUp.pregnancy_id == named.id, FollowUp.rule_code == "prenatal_2")
        )
        assert found is not None
        p.pk["followup_named"] = found
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
        # a counselor may be named responsible: asks, and finds this one not naming her
        served(list(PRENATAL), N, counselor=N),
    ),
    Read(
        "maternalCareFollowUps of the pregnancy naming A's counselor responsible: she reads them; the social "
        "worker who does not serve the mother, and another organisation, NOT_FOUND",
        "query($id: ID!) { r: maternalCareFollowUps(filter: {pregnancyId: $id}, first: 20) { nodes { rule } } }",
        lambda p: {"id": p.gid("MaternalCarePregnancy", "pregnancy_named")},
        lambda d: [n["rule"] for n in d["nodes"]],
        per_role(
            anonymous=U,
            platform_admin=list(PRENATAL),
            org_admin_a=list(PRENATAL),
            org_admin_b=N,
            social_worker=N,
            counselor=list(PRENATAL),
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "MaternalCareFollowUp node of the pregnancy naming A's counselor responsible",
        *node("MaternalCareFollowUp", "followup_named", "rule status", lambda d: (d["rule"], d["status"])),
        by_node(("prenatal_2", "OPEN"), social_worker=NULL, counselor=("prenatal_2", "OPEN")),
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


async def _discharge(p: PluginWorld) -> dict[str, Any]:
    """A new pregnancy of A delivered today, its discharge not recorded."""
    _, pregnancy = await _fresh_mother(p, pregnant=True)
    assert pregnancy is not None
    async with p.staff("a", extra_permissions=PERMISSIONS) as ctx:
        await mc.record_outcome(ctx, pregnancy, outcome="delivered", on=_today())
    return {"input": {"pregnancyId": ids.encode("MaternalCarePregnancy", pregnancy), "on": _today().isoformat()}}


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
        "maternalCareRecordDischarge of A's delivered mother (the home visit moves)",
        _m("maternalCareRecordDischarge", "MaternalCareRecordDischargeInput"),
        _discharge,
        ON_A,
    ),
    Write(
        "maternalCareMissFollowUp of A's mother",
        _m("maternalCareMissFollowUp", "MaternalCareMissFollowUpInput"),
        _miss,
        ON_A,
    ),
]
