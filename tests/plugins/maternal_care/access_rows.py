"""The maternal-care registry's rows of the permission matrix (tests/schema/test_plugin_access.py), and its
records in the matrix's world.

Who is who (tests/schema/access_world.py): the world's `social_worker` is the assigned social worker of A's
mother (`mother_a`, pregnancy `pregnancy_a`, red, the social worker responsible); B's mother is assigned to a
social worker of B made here. Health details are for the mother's social worker, maternal-care staff (the
plugin role; no world account holds it: tests/plugins/maternal_care covers it) and the administrators of her
organisation (the platform administrator's account is of A). Counselors, community heads, volunteers and
partners hold no maternal-care permission (FORBIDDEN on root fields, null by node); a counselor may be named
responsible for a pregnancy and so asks for the high-risk list (empty: none names the world's counselor).
Another organisation sees nothing. The mother's contact is core's Resident: raw for those who serve her (her
social worker), masked for administrators, null for everyone else.

This part enables maternal_care for both organisations itself (tests/plugin_access.PLUGINS predates it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from core.models import Account
from core.services import plugins as plugin_service
from plugins.maternal_care.registry import services as mc
from schema import ids
from tests.plugin_access import (
    MASKED_A,
    NULL,
    OK,
    PHONE_A,
    PHONE_B,
    SHANGHAI,
    UNIQUE,
    F,
    N,
    PluginWorld,
    Read,
    Write,
    managers,
    no_vars,
    node,
    per_role,
)

PLUGIN = "maternal_care"
PERMISSIONS = frozenset({mc.MANAGE, mc.HEALTH, mc.LECTURES})
TAG = {"a": "甲", "b": "乙"}


def _today() -> Any:
    return datetime.now(SHANGHAI).date()


async def build(p: PluginWorld) -> None:
    """Each organisation: maternal care enabled; a mother (a new resident with a phone) assigned to a social
    worker (A: the world's), with an ongoing pregnancy 20 weeks along graded red, that social worker
    responsible (so the risk history has one row)."""
    w = p.w
    names = frozenset(w.host.plugins) if w.host is not None else frozenset({PLUGIN})
    async with w.service() as ctx:
        for org in ("org_a", "org_b"):
            await plugin_service.set_enabled(
                ctx, organization_id=w.ids[org], plugin=PLUGIN, enabled=True, installed=names, known=names
            )
        sw_b = Account(
            username=f"mc-sw-b-{next(UNIQUE)}",
            display_name="乙社工",
            password_hash="-",
            role="social_worker",
            organization_id=w.ids["org_b"],
        )
        ctx.session.add(sw_b)
        await ctx.session.flush()
        p.pk["mc_sw_b"] = sw_b.id
    workers = {"a": w.ids["account_social_worker"], "b": p.pk["mc_sw_b"]}
    for org, phone in (("a", PHONE_A), ("b", PHONE_B)):
        async with p.staff(org, extra_permissions=PERMISSIONS) as ctx:
            mother = await mc.register_mother(
                ctx,
                consent=True,
                social_worker_account_id=workers[org],
                name=f"{TAG[org]}孕妇",
                phone=phone,
                address=f"{TAG[org]}区孕妇家",
                consent_note=f"{TAG[org]}同意",
            )
            pregnancy = await mc.register_pregnancy(
                ctx,
                mother.id,
                lmp=_today() - timedelta(weeks=20),
                grade=mc.Grade("red", responsible_account_id=workers[org]),
                reason=f"{TAG[org]}子痫前期",
            )
            p.pk |= {
                f"mother_{org}": mother.id,
                f"mc_resident_{org}": mother.resident_id,
                f"pregnancy_{org}": pregnancy.id,
            }


async def _fresh_mother(p: PluginWorld, *, pregnant: bool = False) -> tuple[int, int | None]:
    """A new mother of A (the world's social worker's), with an ongoing pregnancy if asked."""
    async with p.staff("a", extra_permissions=PERMISSIONS) as ctx:
        mother = await mc.register_mother(
            ctx,
            consent=True,
            social_worker_account_id=p.pk["account_social_worker"],
            name=f"w-孕妇{next(UNIQUE)}",
            phone="13700005555",
        )
        pregnancy = None
        if pregnant:
            pregnancy = (await mc.register_pregnancy(ctx, mother.id, lmp=_today() - timedelta(weeks=12))).id
    return mother.id, pregnancy


# -- cells ----------------------------------------------------------------------------------------------------------


def served(a: Any, b: Any, **overrides: Any) -> dict[str, Any]:
    """Root fields: A's administrators (the platform administrator's account is of A) and the world's social
    worker (the mother's) get `a`, B's administrator `b`; the rest hold no maternal-care permission."""
    return managers(a, b, a, **overrides)


def by_node(a: Any, **overrides: Any) -> dict[str, Any]:
    """A record of A's by node: those who serve the mother see `a`; everyone else null, as for a missing one."""
    cells = dict.fromkeys(("anonymous", "org_admin_b", "counselor", "community_head", "volunteer", "partner_a"), NULL)
    return per_role(**(cells | {"platform_admin": a, "org_admin_a": a, "social_worker": a} | overrides))


def _names(d: Any) -> list[str]:
    return sorted(n["name"] for n in d["nodes"] if n["name"] and not n["name"].startswith("w-"))


READS: list[Read] = [
    Read(
        "maternalCareMothers: the mothers one serves, in one's organisation",
        "{ r: maternalCareMothers(first: 100) { nodes { name consentNote } } }",
        no_vars,
        _names,
        served(["甲孕妇"], ["乙孕妇"]),
    ),
    Read(
        "maternalCareHighRisk: health details of the ongoing orange/red/purple pregnancies",
        "{ r: maternalCareHighRisk(first: 100) { nodes { riskColour mother { name } } } }",
        no_vars,
        lambda d: sorted(
            (n["riskColour"], n["mother"]["name"]) for n in d["nodes"] if n["mother"]["name"][:1] in TAG.values()
        ),
        # a counselor may be named responsible for a pregnancy: asks, and finds those naming them (none here)
        served([("RED", "甲孕妇")], [("RED", "乙孕妇")], counselor=[]),
    ),
    Read(
        "MaternalCareMother node: the record, her pregnancies' health details",
        *node(
            "MaternalCareMother",
            "mother_a",
            "name consentNote socialWorker { name } currentPregnancy { riskColour } pregnancies { lmp }",
            lambda d: (d["name"], d["consentNote"], d["currentPregnancy"]["riskColour"], len(d["pregnancies"])),
        ),
        by_node(("甲孕妇", "甲同意", "RED", 1)),
    ),
    Read(
        "MaternalCarePregnancy node: dating, grade, responsible, histories, gestational age",
        *node(
            "MaternalCarePregnancy",
            "pregnancy_a",
            "status riskColour infectious responsible { name } edd outcomeOn "
            "riskHistory { seq toColour reason } datingCorrections { reason } "
            'gestationalAge(timeZone: "Asia/Shanghai") { weeks days trimester }',
            lambda d: (
                d["status"],
                d["riskColour"],
                [(h["seq"], h["toColour"], h["reason"]) for h in d["riskHistory"]],
                d["gestationalAge"]["weeks"],
                d["gestationalAge"]["trimester"],
            ),
        ),
        by_node(("ONGOING", "RED", [(1, "RED", "甲子痫前期")], 20, 2)),
    ),
    Read(
        "resident(id:) of A's mother: contact raw for her social worker (the registry's relation), masked for "
        "administrators",
        "query($id: ID!) { r: resident(id: $id) { name phone } }",
        lambda p: {"id": ids.encode("Resident", p.pk["mc_resident_a"])},
        lambda d: (d["name"], d["phone"]) if d else NULL,
        per_role(
            anonymous=NULL,
            platform_admin=("甲孕妇", MASKED_A),
            org_admin_a=("甲孕妇", MASKED_A),
            org_admin_b=NULL,
            social_worker=("甲孕妇", PHONE_A),
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
]


def _m(name: str, input_type: str, fields: str = "") -> str:
    return f"mutation($input: {input_type}!) {{ r: {name}(input: $input) {{ {fields} errors {{ code }} }} }}"


async def _new_mother_input(p: PluginWorld) -> dict[str, Any]:
    return {
        "input": {
            "consent": True,
            "socialWorkerId": ids.encode("Account", p.pk["account_social_worker"]),
            "resident": {"name": f"w-孕妇{next(UNIQUE)}", "phone": "13700006666"},
        }
    }


async def _mother(p: PluginWorld) -> dict[str, Any]:
    mother, _ = await _fresh_mother(p)
    return {
        "input": {
            "motherId": ids.encode("MaternalCareMother", mother),
            "lmp": (_today() - timedelta(weeks=8)).isoformat(),
        }
    }


async def _pregnancy(p: PluginWorld) -> str:
    _, pregnancy = await _fresh_mother(p, pregnant=True)
    assert pregnancy is not None
    return ids.encode("MaternalCarePregnancy", pregnancy)


async def _regrade(p: PluginWorld) -> dict[str, Any]:
    return {"input": {"id": await _pregnancy(p), "grade": {"colour": "YELLOW"}, "reason": "w-高龄"}}


async def _correct(p: PluginWorld) -> dict[str, Any]:
    return {"input": {"id": await _pregnancy(p), "edd": (_today() + timedelta(weeks=27)).isoformat(), "reason": "B超"}}


async def _outcome(p: PluginWorld) -> dict[str, Any]:
    return {"input": {"id": await _pregnancy(p), "outcome": "LOSS", "on": _today().isoformat()}}


async def _assign(p: PluginWorld) -> dict[str, Any]:
    mother, _ = await _fresh_mother(p)
    return {
        "input": {
            "id": ids.encode("MaternalCareMother", mother),
            "socialWorkerId": ids.encode("Account", p.pk["account_social_worker"]),
        }
    }


ON_A = served(OK, N)

WRITES: list[Write] = [
    Write(
        "maternalCareRegisterMother (a new resident, A's social worker assigned)",
        _m("maternalCareRegisterMother", "MaternalCareRegisterMotherInput"),
        _new_mother_input,
        ON_A,
    ),
    Write(
        "maternalCareRegisterPregnancy",
        _m("maternalCareRegisterPregnancy", "MaternalCareRegisterPregnancyInput"),
        _mother,
        ON_A,
    ),
    Write(
        "maternalCareChangeRisk",
        _m("maternalCareChangeRisk", "MaternalCareChangeRiskInput"),
        _regrade,
        ON_A,
    ),
    Write(
        "maternalCareCorrectDating",
        _m("maternalCareCorrectDating", "MaternalCareCorrectDatingInput"),
        _correct,
        ON_A,
    ),
    Write(
        "maternalCareRecordOutcome",
        _m("maternalCareRecordOutcome", "MaternalCareRecordOutcomeInput"),
        _outcome,
        ON_A,
    ),
    Write(
        "maternalCareAssignSocialWorker: staff and administrators, not the social worker",
        _m("maternalCareAssignSocialWorker", "MaternalCareAssignSocialWorkerInput"),
        _assign,
        served(OK, N, social_worker=F),
    ),
]
