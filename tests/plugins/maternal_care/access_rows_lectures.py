"""The maternal-care lectures' rows of the permission matrix (tests/schema/test_plugin_access.py), and their
records in the matrix's world (on top of the registry's part, tests/plugins/maternal_care/access_rows.py:
`mother_a` is the world's social worker's, 20 weeks along; `mother_b` B's).

Who is who: lectures themselves (title, seats) are seen by administrators and the organisation's social
workers; who is registered for what is health-adjacent, seen by administrators and the mother's own social
worker only. This part adds in A another social worker (`mc_sw_other_a`) with a mother of her own
(`mother_other_a`), so the world's social worker is "another social worker of A" for that mother: she sees
the seat counts, not the name, and cannot address the mother or her registrations. A platform administrator
(the world's is of A) acts on A's lectures only (the plugin's `lecture_scope`). Counselors, community heads,
volunteers and partners hold no maternal-care permission; another organisation sees nothing (null /
NOT_FOUND). Maternal-care staff (the plugin role) has no world account: tests/plugins/maternal_care covers it.

Lectures made by the rows are titled "w-…" (list rows leave them out) and start later than the world's."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from core.models import Account
from plugins.maternal_care.lectures import services as lectures
from plugins.maternal_care.registry import services as mc
from schema import ids
from tests.plugin_access import (
    NULL,
    OK,
    SHANGHAI,
    UNIQUE,
    F,
    N,
    PluginWorld,
    Read,
    Write,
    no_vars,
    node,
)
from tests.plugins.maternal_care.access_rows import PERMISSIONS, TAG, by_node, served

ALL_TRIMESTERS = ("trimester_1", "trimester_2", "trimester_3")


def _now() -> datetime:
    return datetime.now(SHANGHAI)


def _admin(p: PluginWorld, org: str) -> Any:
    """A committed transaction as `org`'s administrator (the world's account: lectures name who acts)."""
    return p.staff(org, extra_permissions=PERMISSIONS, account_id=p.pk[f"account_org_admin_{org}"])


async def _lecture(p: PluginWorld, org: str, title: str, *, days: int, capacity: int = 5) -> int:
    start = (_now() + timedelta(days=days)).replace(hour=19, minute=0, second=0, microsecond=0)
    async with _admin(p, org) as ctx:
        lecture = await lectures.create_lecture(
            ctx,
            lectures.LectureInput(
                title=title,
                speaker="产科 王医生",
                starts_at=start,
                ends_at=start + timedelta(hours=1),
                capacity=capacity,
                audience=ALL_TRIMESTERS,
                online_url="https://meeting.example.cn/1",
            ),
        )
        return int(lecture.id)


async def _register(p: PluginWorld, org: str, lecture_id: int, mother_id: int) -> int:
    async with _admin(p, org) as ctx:
        return int((await lectures.register(ctx, lecture_id, mother_id)).id)


async def _mother(p: PluginWorld, worker: str = "account_social_worker", name: str | None = None) -> int:
    """A mother of A assigned to `worker` (the world's social worker unless told), 20 weeks along."""
    async with _admin(p, "a") as ctx:
        mother = await mc.register_mother(
            ctx,
            consent=True,
            social_worker_account_id=p.pk[worker],
            name=name or f"w-孕妇{next(UNIQUE)}",
            phone="13700007777",
        )
        await mc.register_pregnancy(ctx, mother.id, lmp=_now().date() - timedelta(weeks=20))
        return int(mother.id)


async def build(p: PluginWorld) -> None:
    """Each organisation: a lecture (`lecture_a`: 甲讲座, one seat; `lecture_b`: 乙讲座) its mother holds a seat
    of (`reg_a`, `reg_b`). A: another social worker's mother (w-他孕妇) waitlisted for 甲讲座 (`reg_other_a`) and
    the only one registered for 甲他讲座 (`lecture_other_a`); 甲推荐讲座, which A's mother fits and is not
    registered for (a recommendation); w-甲外讲座, whose audience was changed under two seated mothers -- the
    world's social worker's (`reg_outside_a`) and another's (`reg_outside_other_a`) -- who no longer fit it."""
    async with p.w.service() as ctx:
        other = Account(
            username=f"mc-sw-other-a-{next(UNIQUE)}",
            display_name="甲另一社工",
            password_hash="-",
            role="social_worker",
            organization_id=p.pk["org_a"],
        )
        ctx.session.add(other)
        await ctx.session.flush()
        p.pk["mc_sw_other_a"] = other.id
    # Named "w-…" so that the registry's rows (their lists of A's mothers) leave her out.
    p.pk["mother_other_a"] = await _mother(p, "mc_sw_other_a", "w-他孕妇")
    for org in ("a", "b"):
        p.pk[f"lecture_{org}"] = await _lecture(p, org, f"{TAG[org]}讲座", days=14, capacity=1)
        p.pk[f"reg_{org}"] = await _register(p, org, p.pk[f"lecture_{org}"], p.pk[f"mother_{org}"])
    p.pk["reg_other_a"] = await _register(p, "a", p.pk["lecture_a"], p.pk["mother_other_a"])
    p.pk["lecture_other_a"] = await _lecture(p, "a", "甲他讲座", days=15)
    p.pk["reg_only_other_a"] = await _register(p, "a", p.pk["lecture_other_a"], p.pk["mother_other_a"])
    p.pk["lecture_rec_a"] = await _lecture(p, "a", "甲推荐讲座", days=16)
    # Named "w-…": the list and recommendation rows leave the lecture and its mothers out.
    p.pk["lecture_outside_a"] = outside = await _lecture(p, "a", "w-甲外讲座", days=17)
    for key, worker in (("reg_outside_a", "account_social_worker"), ("reg_outside_other_a", "mc_sw_other_a")):
        p.pk[key] = await _register(p, "a", outside, await _mother(p, worker, f"w-外孕妇{next(UNIQUE)}"))
    async with _admin(p, "a") as ctx:  # the audience changed under their seats (as an edit would)
        await ctx.session.execute(
            text("UPDATE maternal_care_lectures SET audience = '{postpartum}' WHERE id = :id"), {"id": outside}
        )


# -- reads ----------------------------------------------------------------------------------------------------------


def _world_titles(d: Any) -> list[str]:
    return sorted(t for t in (n["title"] for n in d) if not t.startswith("w-"))


def _counts(d: Any) -> tuple[Any, ...]:
    return (d["title"], d["registeredCount"], d["seatsLeft"], d["waitlistedCount"])


def _registrations(d: Any) -> list[tuple[str, str]]:
    return sorted((r["motherName"], r["status"]) for r in d["registrations"]["nodes"])


def _mother_id(key: str) -> Any:
    return lambda p: {"m": ids.encode("MaternalCareMother", p.pk[key])}


LECTURE_COUNTS = "title registeredCount seatsLeft waitlistedCount"
A_LECTURES = [("甲他讲座", 1, 4, 0), ("甲推荐讲座", 0, 5, 0), ("甲讲座", 1, 0, 1)]
MOTHER_REGISTRATIONS = (
    "query($m: ID!) { r: maternalCareMotherLectureRegistrations(motherId: $m) { nodes { status lecture { title } } } }"
)
RECOMMENDATIONS = "query($m: ID!) { r: maternalCareLectureRecommendations(motherId: $m) { title } }"
# Counselors, community heads and volunteers addressing a mother by id: she is outside their scope (the
# registry's `mother_scope`), which answers like a missing one; a partner is refused before (FORBIDDEN).
NO_MOTHER = {"counselor": N, "community_head": N, "volunteer": N}

READS: list[Read] = [
    Read(
        "maternalCareLectures: the organisation's lectures with their seat counts (its social workers too)",
        "{ r: maternalCareLectures(first: 100) { nodes { " + LECTURE_COUNTS + " } } }",
        no_vars,
        lambda d: sorted(
            _counts(n) for n in d["nodes"] if not n["title"].startswith("w-") and n["title"][:1] in TAG.values()
        ),
        served(A_LECTURES, [("乙讲座", 1, 0, 0)]),
    ),
    Read(
        "MaternalCareLecture node: title and seat counts (another social worker's waitlisted mother counted)",
        *node("MaternalCareLecture", "lecture_a", LECTURE_COUNTS, _counts),
        by_node(("甲讲座", 1, 0, 1)),
    ),
    Read(
        "MaternalCareLecture node of B's: B's administrator only (a platform administrator acts in its own)",
        *node("MaternalCareLecture", "lecture_b", LECTURE_COUNTS, _counts),
        by_node(NULL, platform_admin=NULL, org_admin_a=NULL, social_worker=NULL, org_admin_b=("乙讲座", 1, 0, 0)),
    ),
    Read(
        "MaternalCareLecture.registrations: all for administrators, her own mothers' for a social worker",
        *node("MaternalCareLecture", "lecture_a", "registrations { nodes { motherName status } }", _registrations),
        by_node(
            [("w-他孕妇", "WAITLISTED"), ("甲孕妇", "REGISTERED")],
            social_worker=[("甲孕妇", "REGISTERED")],
        ),
    ),
    Read(
        "MaternalCareLecture.registrations of a lecture only another social worker's mother is registered for",
        *node(
            "MaternalCareLecture", "lecture_other_a", "registrations { nodes { motherName status } }", _registrations
        ),
        by_node([("w-他孕妇", "REGISTERED")], social_worker=[]),
    ),
    Read(
        "maternalCareMotherLectureRegistrations of A's mother (the world's social worker's)",
        MOTHER_REGISTRATIONS,
        _mother_id("mother_a"),
        lambda d: [(n["status"], n["lecture"]["title"]) for n in d["nodes"]],
        served([("REGISTERED", "甲讲座")], N, **NO_MOTHER),
    ),
    Read(
        "maternalCareMotherLectureRegistrations of another social worker's mother: NOT_FOUND for the world's",
        MOTHER_REGISTRATIONS,
        _mother_id("mother_other_a"),
        lambda d: sorted((n["status"], n["lecture"]["title"]) for n in d["nodes"]),
        served([("REGISTERED", "甲他讲座"), ("WAITLISTED", "甲讲座")], N, social_worker=N, **NO_MOTHER),
    ),
    Read(
        "maternalCareLectureRecommendations for A's mother (where her pregnancy stands)",
        RECOMMENDATIONS,
        _mother_id("mother_a"),
        _world_titles,
        served(["甲他讲座", "甲推荐讲座"], N, **NO_MOTHER),
    ),
    Read(
        "maternalCareLectureRecommendations for another social worker's mother: NOT_FOUND for the world's",
        RECOMMENDATIONS,
        _mother_id("mother_other_a"),
        _world_titles,
        served(["甲推荐讲座"], N, social_worker=N, **NO_MOTHER),
    ),
    Read(
        "MaternalCareLectureRegistration node: status, the mother's name, the lecture",
        *node(
            "MaternalCareLectureRegistration",
            "reg_a",
            "status motherName waitlistPosition lecture { title }",
            lambda d: (d["status"], d["motherName"], d["waitlistPosition"], d["lecture"]["title"]),
        ),
        by_node(("REGISTERED", "甲孕妇", None, "甲讲座")),
    ),
    Read(
        "MaternalCareLectureRegistration node of B's: B's administrator only",
        *node(
            "MaternalCareLectureRegistration",
            "reg_b",
            "status motherName",
            lambda d: (d["status"], d["motherName"]),
        ),
        by_node(NULL, platform_admin=NULL, org_admin_a=NULL, social_worker=NULL, org_admin_b=("REGISTERED", "乙孕妇")),
    ),
    Read(
        "MaternalCareLectureRegistration node of another social worker's mother: null for the world's",
        *node(
            "MaternalCareLectureRegistration",
            "reg_other_a",
            "status motherName waitlistPosition",
            lambda d: (d["status"], d["motherName"], d["waitlistPosition"]),
        ),
        by_node(("WAITLISTED", "w-他孕妇", 1), social_worker=NULL),
    ),
    Read(
        "MaternalCareLecture.registrationsOutsideAudience: seats no longer fitting, of the mothers one serves",
        *node(
            "MaternalCareLecture",
            "lecture_outside_a",
            "registrationsOutsideAudience",
            lambda d: d["registrationsOutsideAudience"],
        ),
        by_node(2, social_worker=1),
    ),
    Read(
        "MaternalCareLectureRegistration.fitsAudience and timeZone of a seat that fits",
        *node(
            "MaternalCareLectureRegistration",
            "reg_a",
            "fitsAudience timeZone",
            lambda d: (d["fitsAudience"], d["timeZone"]),
        ),
        by_node((True, "Asia/Shanghai")),
    ),
    Read(
        "MaternalCareLectureRegistration.fitsAudience of a seat an edit left outside the audience",
        *node("MaternalCareLectureRegistration", "reg_outside_a", "fitsAudience", lambda d: d["fitsAudience"]),
        by_node(False),
    ),
    Read(
        "MaternalCareLectureRegistration.fitsAudience of another social worker's mother: null for the world's",
        *node("MaternalCareLectureRegistration", "reg_outside_other_a", "fitsAudience", lambda d: d["fitsAudience"]),
        by_node(False, social_worker=NULL),
    ),
]


# -- writes ---------------------------------------------------------------------------------------------------------


def _m(name: str, input_type: str) -> str:
    return f"mutation($input: {input_type}!) {{ r: {name}(input: $input) {{ errors {{ code }} }} }}"


def _lecture_input(days: int = 40) -> dict[str, Any]:
    start = (_now() + timedelta(days=days)).replace(hour=19, minute=0, second=0, microsecond=0)
    return {
        "title": f"w-讲座{next(UNIQUE)}",
        "speaker": "产科 王医生",
        "startsAt": start.isoformat(),
        "endsAt": (start + timedelta(hours=1)).isoformat(),
        "capacity": 5,
        "audience": ["TRIMESTER_1", "TRIMESTER_2", "TRIMESTER_3"],
        "place": "社区活动室",
    }


async def _create(p: PluginWorld) -> dict[str, Any]:
    return {"input": _lecture_input()}


async def _fresh_lecture(p: PluginWorld) -> str:
    return ids.encode("MaternalCareLecture", await _lecture(p, "a", f"w-讲座{next(UNIQUE)}", days=40))


async def _update(p: PluginWorld) -> dict[str, Any]:
    return {"input": {"id": await _fresh_lecture(p), "title": f"w-改{next(UNIQUE)}", "capacity": 6}}


async def _cancel(p: PluginWorld) -> dict[str, Any]:
    return {"input": {"id": await _fresh_lecture(p), "reason": "w-讲者生病"}}


async def _cancel_b(p: PluginWorld) -> dict[str, Any]:
    lecture = await _lecture(p, "b", f"w-讲座{next(UNIQUE)}", days=40)
    return {"input": {"id": ids.encode("MaternalCareLecture", lecture), "reason": "w-讲者生病"}}


async def _registration_input(p: PluginWorld, worker: str = "account_social_worker") -> dict[str, Any]:
    lecture = await _lecture(p, "a", f"w-讲座{next(UNIQUE)}", days=40)
    mother = await _mother(p, worker)
    return {
        "input": {
            "lectureId": ids.encode("MaternalCareLecture", lecture),
            "motherId": ids.encode("MaternalCareMother", mother),
        }
    }


async def _register_other(p: PluginWorld) -> dict[str, Any]:
    return await _registration_input(p, "mc_sw_other_a")


async def _fresh_registration(p: PluginWorld, worker: str = "account_social_worker", *, started: bool = False) -> int:
    lecture = await _lecture(p, "a", f"w-讲座{next(UNIQUE)}", days=40)
    registration = await _register(p, "a", lecture, await _mother(p, worker))
    if started:  # attendance is recorded once the lecture has started: move it to now
        async with _admin(p, "a") as ctx:
            await ctx.session.execute(
                text(
                    "UPDATE maternal_care_lectures SET starts_at = now() - interval '1 hour',"
                    " ends_at = now() + interval '1 hour' WHERE id = :id"
                ),
                {"id": lecture},
            )
    return registration


async def _cancel_registration(p: PluginWorld) -> dict[str, Any]:
    registration = await _fresh_registration(p)
    return {"input": {"id": ids.encode("MaternalCareLectureRegistration", registration), "reason": "w-发烧"}}


async def _cancel_other_registration(p: PluginWorld) -> dict[str, Any]:
    registration = await _fresh_registration(p, "mc_sw_other_a")
    return {"input": {"id": ids.encode("MaternalCareLectureRegistration", registration), "reason": "w-发烧"}}


async def _attendance(p: PluginWorld) -> dict[str, Any]:
    registration = await _fresh_registration(p, started=True)
    return {"input": {"id": ids.encode("MaternalCareLectureRegistration", registration), "attendance": "PRESENT"}}


# Running lectures: administrators (a platform administrator on its own organisation's); a social worker
# recommends and registers but does not run them.
RUNS = served(OK, N, social_worker=F)

WRITES: list[Write] = [
    Write(
        "maternalCareCreateLecture: administrators, each in its own organisation (B's administrator makes B's)",
        _m("maternalCareCreateLecture", "MaternalCareCreateLectureInput"),
        _create,
        served(OK, OK, social_worker=F),
    ),
    Write(
        "maternalCareUpdateLecture (A's lecture)",
        _m("maternalCareUpdateLecture", "MaternalCareUpdateLectureInput"),
        _update,
        RUNS,
    ),
    Write(
        "maternalCareCancelLecture (A's lecture)",
        _m("maternalCareCancelLecture", "MaternalCareCancelLectureInput"),
        _cancel,
        RUNS,
    ),
    Write(
        "maternalCareCancelLecture (B's lecture): B's administrator; A's administrators, the platform one too, "
        "NOT_FOUND",
        _m("maternalCareCancelLecture", "MaternalCareCancelLectureInput"),
        _cancel_b,
        served(N, OK, social_worker=F),
    ),
    Write(
        "maternalCareRecordLectureAttendance (a seat of A's started lecture)",
        _m("maternalCareRecordLectureAttendance", "MaternalCareRecordLectureAttendanceInput"),
        _attendance,
        RUNS,
    ),
    Write(
        "maternalCareRegisterForLecture: the world's social worker's own mother",
        _m("maternalCareRegisterForLecture", "MaternalCareRegisterForLectureInput"),
        _registration_input,
        served(OK, N),
    ),
    Write(
        "maternalCareRegisterForLecture: another social worker's mother (NOT_FOUND for the world's)",
        _m("maternalCareRegisterForLecture", "MaternalCareRegisterForLectureInput"),
        _register_other,
        served(OK, N, social_worker=N),
    ),
    # Counselors, community heads and volunteers hold no lecture permission: FORBIDDEN before any lookup, as
    # `register` answers.
    Write(
        "maternalCareCancelLectureRegistration: the world's social worker's own mother's",
        _m("maternalCareCancelLectureRegistration", "MaternalCareCancelLectureRegistrationInput"),
        _cancel_registration,
        served(OK, N),
    ),
    Write(
        "maternalCareCancelLectureRegistration: another social worker's mother's (NOT_FOUND for the world's)",
        _m("maternalCareCancelLectureRegistration", "MaternalCareCancelLectureRegistrationInput"),
        _cancel_other_registration,
        served(OK, N, social_worker=N),
    ),
]
