"""The demo data set, modelled on the seed: Xi'an's districts, a dozen communities, a few hundred
volunteers, and the requests of December 2021 (TB medicine for 30 patients, infant formula for a baby in
an isolation ward, an elderly resident, a pregnant woman with a small child …).

Everything goes through the services, so the demo obeys the same rules as real input. Loading is
idempotent: a marker row in app_meta says it was done, and an advisory lock keeps two loaders apart.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.models import AppMeta, CategoryTraining, HelpRequest, Organization
from core.plugins import PluginHost
from core.services import (
    assignments,
    auth,
    communities,
    consent,
    help_requests,
    matching,
    organizations,
    plugins,
    referrals,
    residents,
    volunteers,
)
from core.services.context import ServiceContext, Viewer
from core.vocab import (
    AssignmentStatus,
    Availability,
    CredentialKind,
    DistrictKind,
    LiaisonRole,
    OrganizationKind,
    PopulationTag,
    RequestCategory,
    Role,
    Team,
    Urgency,
    VolunteerMode,
)

DEMO_MARKER = "demo_loaded_at"
# The demo creates organisations and their records: it acts as a platform administrator (and so works
# through the app role's row-level security as well as through the owner's connection).
DEMO_VIEWER = Viewer(label="demo loader", role="platform_admin")

# One account per role, for trying the access rules (documented in the README). Demo only.
DEMO_PASSWORDS = {
    "admin": "demo-admin-2021",
    "orgadmin": "demo-orgadmin-2021",
    "socialworker": "demo-socialworker-2021",
    "socialworker2": "demo-socialworker2-2021",
    "counselor": "demo-counselor-2021",
    "head": "demo-head-2021",
    "volunteer": "demo-volunteer-2021",
}

# (name, kind, latitude, longitude) of the city's districts, counties and development zones.
DISTRICTS = [
    ("新城区", DistrictKind.DISTRICT, 34.2669, 108.9606),
    ("碑林区", DistrictKind.DISTRICT, 34.2537, 108.9400),
    ("莲湖区", DistrictKind.DISTRICT, 34.2653, 108.9160),
    ("雁塔区", DistrictKind.DISTRICT, 34.2229, 108.9488),
    ("灞桥区", DistrictKind.DISTRICT, 34.2729, 109.0646),
    ("未央区", DistrictKind.DISTRICT, 34.3159, 108.9402),
    ("阎良区", DistrictKind.DISTRICT, 34.6624, 109.2264),
    ("临潼区", DistrictKind.DISTRICT, 34.3672, 109.2143),
    ("长安区", DistrictKind.DISTRICT, 34.1590, 108.9072),
    ("高陵区", DistrictKind.DISTRICT, 34.5347, 109.0881),
    ("鄠邑区", DistrictKind.DISTRICT, 34.1086, 108.6050),
    ("蓝田县", DistrictKind.COUNTY, 34.1513, 109.3232),
    ("周至县", DistrictKind.COUNTY, 34.1636, 108.2222),
    ("高新区", DistrictKind.DEVELOPMENT_ZONE, 34.2145, 108.8818),
    ("经开区", DistrictKind.DEVELOPMENT_ZONE, 34.3420, 108.9390),
    ("曲江新区", DistrictKind.DEVELOPMENT_ZONE, 34.2041, 108.9806),
    ("浐灞生态区", DistrictKind.DEVELOPMENT_ZONE, 34.3198, 109.0339),
    ("国际港务区", DistrictKind.DEVELOPMENT_ZONE, 34.3741, 109.0530),
    ("航空基地", DistrictKind.DEVELOPMENT_ZONE, 34.6436, 109.2441),
    ("航天基地", DistrictKind.DEVELOPMENT_ZONE, 34.1528, 108.9720),
    ("西咸新区", DistrictKind.DEVELOPMENT_ZONE, 34.3306, 108.7209),
]

# (district, street, community, latitude, longitude)
COMMUNITIES = [
    ("雁塔区", "小寨路街道", "长延堡社区", 34.2196, 108.9462),
    ("雁塔区", "电子城街道", "电子西街社区", 34.2071, 108.9135),
    ("碑林区", "南院门街道", "粉巷社区", 34.2558, 108.9387),
    ("新城区", "解放门街道", "尚勤路社区", 34.2744, 108.9612),
    ("莲湖区", "北院门街道", "大皮院社区", 34.2651, 108.9363),
    ("未央区", "张家堡街道", "凤城五路社区", 34.3388, 108.9431),
    ("长安区", "韦曲街道", "西街社区", 34.1579, 108.9410),
    ("灞桥区", "纺织城街道", "纺织城社区", 34.2679, 109.0571),
    ("高新区", "丈八街道", "锦业路社区", 34.1923, 108.8701),
    ("曲江新区", "曲江街道", "雁南社区", 34.2128, 108.9760),
    ("浐灞生态区", "广运潭街道", "世园社区", 34.3291, 109.0518),
    ("临潼区", "骊山街道", "华清社区", 34.3640, 109.2170),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玲建国红梅鹏飞晨阳欣怡子涵浩然宇航思远佳琪雨萱博文嘉怡"
SKILLS = [
    "driving",
    "first_aid",
    "nursing",
    "psychological_counseling",
    "logistics",
    "elderly_care",
    "childcare",
    "pharmacy",
    "sign_language",
    "translation",
    "data_entry",
    "warehouse",
]
ONLINE_TEAMS = [
    Team.RECRUITMENT,
    Team.TRAINING,
    Team.EXTERNAL_LIAISON,
    Team.COMMUNITY_LIAISON,
    Team.SUPPLIES_MANAGEMENT,
    Team.OPINION_MONITORING,
    Team.PSYCHOLOGICAL_SUPPORT,
    Team.PUBLICITY,
]
VOLUNTEER_COUNT = 300


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _mobile(rng: random.Random, used: set[str]) -> str:
    while True:
        number = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        if number not in used:
            used.add(number)
            return number


async def load_demo(engine: AsyncEngine, *, now: datetime | None = None, host: PluginHost | None = None) -> bool:
    """Load the demo data set unless it is there already. Returns whether it loaded anything.

    With a plugin host, every loaded plugin is enabled for the association and adds its own demo data."""
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        await session.execute(text("SELECT pg_advisory_xact_lock(727002)"))
        if await session.scalar(select(AppMeta.key).where(AppMeta.key == DEMO_MARKER)) is not None:
            return False
        # The demo loader also holds every plugin permission (a platform administrator's role does not).
        granted = frozenset(p.name for p in host.permissions) if host is not None else frozenset()
        ctx = ServiceContext(session=session, viewer=dataclasses.replace(DEMO_VIEWER, extra_permissions=granted))
        if now is not None:
            ctx.clock = lambda: now
        if host is not None:
            ctx.events = host
        association = await _populate(ctx, random.Random(20211223), frozenset(host.plugins) if host else frozenset())
        # Plugins add their demo rows as the association's (their tables default to the caller's organisation).
        ctx = dataclasses.replace(ctx, viewer=dataclasses.replace(ctx.viewer, organization_id=association.id))
        if host is not None:
            await host.call_each_async("register_demo_data", ctx=ctx)
            if "counseling" in host.plugins:
                await _referral(ctx, association.id)
        # The hospital's system reads the association's data with an API token (its value is never shown:
        # create your own with createApiToken).
        await auth.create_api_token(ctx, association.id, "胸科医院信息系统")
        # The association's partner system hears its messages through a webhook; one message already went out.
        from core.delivery.demo import add_demo_data as add_delivery_demo

        await add_delivery_demo(ctx, association.id)
        session.add(AppMeta(key=DEMO_MARKER, value=ctx.now().isoformat()))
    return True


async def _referral(ctx: ServiceContext, association_id: int) -> None:
    """After the lockdown: a mother who queued for her baby's formula asks for someone to talk to. Her consent
    covers the summary and her phone, for counseling, for six months; the referral waits for a counselor."""
    community_id = await ctx.session.scalar(text("SELECT min(id) FROM communities"))
    mother = await residents.create_resident(
        ctx, name="陈女士", community_id=community_id, phone="13700000021", address="武昌区示范社区3栋"
    )
    given = await consent.record_consent(
        ctx,
        resident_id=mother.id,
        scopes=["summary", "contact"],
        target="counseling",
        target_organization_id=association_id,
        purpose="封控结束后的心理支持",
        valid_until=ctx.now() + timedelta(days=180),
    )
    await referrals.send_referral(
        ctx,
        resident_id=mother.id,
        consent_id=given.id,
        summary="婴儿在隔离病房期间奶粉险些断供，母亲近两周失眠、焦虑，希望有人倾听。",
        target_plugin="counseling",
        target_organization_id=association_id,
    )


async def _populate(ctx: ServiceContext, rng: random.Random, plugin_names: frozenset[str]) -> Organization:
    now = ctx.now()
    association = await organizations.create_organization(
        ctx, name="西安市社会工作协会", kind=OrganizationKind.ASSOCIATION
    )
    # Enabled before anything happens, so the plugins hear the association's demo events.
    for name in sorted(plugin_names):
        await plugins.set_enabled(
            ctx, organization_id=association.id, plugin=name, enabled=True, installed=plugin_names, known=plugin_names
        )
    for name, kind in [
        ("西安市胸科医院志愿服务队", OrganizationKind.HOSPITAL),
        ("陕西慈善基金会", OrganizationKind.FOUNDATION),
        ("西安市疾病预防控制中心", OrganizationKind.GOVERNMENT),
        ("雁塔区阳光社工服务中心", OrganizationKind.AGENCY),
    ]:
        await organizations.create_organization(ctx, name=name, kind=kind)

    districts = {}
    for name, kind, lat, lng in DISTRICTS:
        districts[name] = (await organizations.create_district(ctx, name=name, kind=kind), lat, lng)

    ppe = await volunteers.create_training(
        ctx,
        code="ppe-basics",
        name="岗前培训：疫情防控与个人防护",
        description="Putting on and taking off protective gear; disinfection.",
    )
    delivery = await volunteers.create_training(
        ctx, code="delivery-safety", name="配送安全规范", description="Contact-free handover, routes, vehicle passes."
    )
    # Medicine runs need the delivery-safety course: matching will only propose trained volunteers.
    ctx.session.add(CategoryTraining(category=RequestCategory.MEDICINE.value, training_id=delivery.id))
    psych = await volunteers.create_training(
        ctx, code="psych-first-aid", name="心理援助基础", description="Psychological first aid on the phone."
    )

    used_phones: set[str] = set()
    community_rows = []
    for district_name, street, name, lat, lng in COMMUNITIES:
        community_rows.append(
            await communities.create_community(
                ctx,
                communities.CommunityInput(
                    name=name,
                    district_id=districts[district_name][0].id,
                    street=street,
                    organization_id=association.id,
                    latitude=lat,
                    longitude=lng,
                    head_name=_name(rng),
                    head_phone=_mobile(rng, used_phones),
                ),
            )
        )

    # Modes in the seed's proportions: 1,625 online, 3,139 offline, 4,194 in reserve.
    modes = [VolunteerMode.ONLINE] * 18 + [VolunteerMode.OFFLINE] * 35 + [VolunteerMode.RESERVE] * 47
    district_names = list(districts)
    people = []
    for i in range(VOLUNTEER_COUNT):
        mode = modes[i % len(modes)]
        district, lat, lng = districts[rng.choice(district_names)]
        skills = rng.sample(SKILLS, rng.choice((1, 2, 3)))
        if mode == VolunteerMode.OFFLINE and i % 3 == 0:
            skills = ["driving", *[s for s in skills if s != "driving"]]
        teams = (
            [rng.choice(ONLINE_TEAMS)]
            if mode == VolunteerMode.ONLINE
            else ([Team.DELIVERY] if "driving" in skills else [])
        )
        volunteer = await volunteers.register_volunteer(
            ctx,
            volunteers.VolunteerInput(
                name=_name(rng),
                phone=_mobile(rng, used_phones),
                mode=mode,
                district_id=district.id,
                organization_id=association.id,
                latitude=round(lat + rng.uniform(-0.03, 0.03), 5),
                longitude=round(lng + rng.uniform(-0.03, 0.03), 5),
                teams=teams,
                skills=skills,
                availability=rng.choices(list(Availability), weights=(8, 1, 1))[0]
                if mode != VolunteerMode.RESERVE
                else Availability.AVAILABLE,
                max_concurrent_assignments=rng.choice((1, 2, 3, 3, 5)),
            ),
        )
        people.append(volunteer)
        await volunteers.record_training(ctx, volunteer.id, ppe.id, now - timedelta(days=rng.randrange(3, 30)))
        if "driving" in skills:
            await volunteers.record_training(ctx, volunteer.id, delivery.id, now - timedelta(days=rng.randrange(1, 20)))
            # Some passes have lapsed: matching must notice.
            expires = now + timedelta(days=rng.randrange(5, 60)) if i % 5 else now - timedelta(days=2)
            await volunteers.add_credential(
                ctx,
                volunteer.id,
                kind=CredentialKind.VEHICLE_PASS,
                number=f"XA-{2021000 + i}",
                issued_by="西安市交警支队",
                valid_from=now - timedelta(days=40),
                expires_at=expires,
            )
        if "psychological_counseling" in skills:
            await volunteers.record_training(ctx, volunteer.id, psych.id, now - timedelta(days=rng.randrange(1, 20)))

    # Each community's work group: one professional social worker and two volunteers.
    online = [p for p in people if p.mode == VolunteerMode.ONLINE]
    for index, community in enumerate(community_rows):
        social_worker = online[index % len(online)]
        await communities.add_liaison(ctx, community.id, social_worker.id, LiaisonRole.SOCIAL_WORKER)
        for offset in (1, 2):
            member = people[(index * 7 + offset * 13) % len(people)]
            if member.id != social_worker.id:
                await communities.add_liaison(ctx, community.id, member.id, LiaisonRole.VOLUNTEER)

    tb_drivers = await _seed_requests(ctx, rng, community_rows, people, used_phones)
    await _accounts(ctx, association.id, community_rows, people, tb_drivers)
    return association


async def _accounts(ctx, org_id, community_rows, people, tb_drivers) -> None:  # type: ignore[no-untyped-def]
    """The TB request's community (粉巷社区) is the one the demo accounts look after."""
    fenxiang = next(c for c in community_rows if c.name == "粉巷社区")
    seats = await communities.liaisons_of(ctx, fenxiang.id)
    social_worker = next(s.volunteer_id for s in seats if s.role == LiaisonRole.SOCIAL_WORKER)
    taken = {social_worker, *tb_drivers}
    counselor = next(p.id for p in people if "psychological_counseling" in p.skills and p.id not in taken)
    # A second social worker, for handing a case over (casework transfers) and sharing the caseload.
    colleague = next(p.id for p in people if p.mode == VolunteerMode.ONLINE and p.id not in {*taken, counselor})
    specs = [
        ("admin", "平台管理员", Role.PLATFORM_ADMIN, {}),
        ("orgadmin", "协会管理员", Role.ORGANIZATION_ADMIN, {}),
        ("socialworker", "粉巷社工", Role.SOCIAL_WORKER, {"volunteer_id": social_worker}),
        ("socialworker2", "粉巷社工（二号站）", Role.SOCIAL_WORKER, {"volunteer_id": colleague}),
        ("counselor", "心理咨询师", Role.COUNSELOR, {"volunteer_id": counselor}),
        ("head", "粉巷社区主任", Role.COMMUNITY_HEAD, {"community_id": fenxiang.id}),
        ("volunteer", "送药志愿者", Role.VOLUNTEER, {"volunteer_id": tb_drivers[0]}),
    ]
    for username, name, role, scope in specs:
        await auth.create_account(
            ctx,
            auth.AccountInput(
                username=username,
                display_name=name,
                password=DEMO_PASSWORDS[username],
                role=role,
                organization_id=org_id,
                **scope,
            ),
        )


async def _seed_requests(ctx, rng, community_rows, people, used_phones) -> list[int]:  # type: ignore[no-untyped-def]
    now = ctx.now()
    by_name = {c.name: c for c in community_rows}

    async def proposed(request_id: int, count: int) -> list[int]:
        """Whom matching proposes, as a coordinator would offer them: offers obey the same hard filters, so
        the seed never offers a driver whose pass has lapsed or an online volunteer for a delivery."""
        return [c.volunteer_id for c in await matching.candidates(ctx, request_id, count, ctx.policy)]

    def req(community: str, title: str, category: RequestCategory, urgency: Urgency, **kw):  # type: ignore[no-untyped-def]
        return help_requests.HelpRequestInput(
            community_id=by_name[community].id,
            title=title,
            category=category,
            urgency=urgency,
            requester_name=kw.pop("requester_name", _name(rng)),
            requester_phone=kw.pop("requester_phone", _mobile(rng, used_phones)),
            **kw,
        )

    # The TB medicine run: verified, four drivers accepted, under way.
    tb = await help_requests.submit(
        ctx,
        req(
            "粉巷社区",
            "30名结核病患者断药，急需抗结核药物",
            RequestCategory.MEDICINE,
            Urgency.CRITICAL,
            description="辖区30名肺结核患者居家隔离，药品将于今晚用完；需从胸科医院取药并分送各户。",
            population_tags=[PopulationTag.CHRONIC_PATIENT],
            beneficiaries=30,
            volunteers_needed=4,
            needed_by=now + timedelta(hours=6),
            required_skills=["driving"],
            required_credentials=[CredentialKind.VEHICLE_PASS],
            requester_address="碑林区南院门街道粉巷社区居委会",
            health_details="肺结核，需异烟肼、利福平连续服药，不可中断。",
        ),
    )
    await help_requests.verify(ctx, tb.id, "与胸科医院、疾控中心电话核实")
    tb_drivers = await proposed(tb.id, 4)
    for driver_id in tb_drivers:
        offer = await assignments.offer(ctx, tb.id, driver_id, "持通行证，负责分片配送")
        await assignments.accept(ctx, offer.id)
    await help_requests.start(ctx, tb.id, "已取药，分四条路线配送")

    formula = await help_requests.submit(
        ctx,
        req(
            "凤城五路社区",
            "隔离病房婴儿奶粉即将用完",
            RequestCategory.DAILY_SUPPLIES,
            Urgency.CRITICAL,
            description="隔离病房内8个月婴儿的奶粉仅剩一顿，需要指定品牌一段奶粉两罐。",
            population_tags=[PopulationTag.CHILD],
            beneficiaries=1,
            needed_by=now + timedelta(hours=2),
            required_skills=["driving"],
            requester_address="未央区凤城五路某隔离酒店",
            health_details="婴儿对牛奶蛋白过敏，需深度水解配方。",
        ),
    )
    await help_requests.verify(ctx, formula.id, "已与隔离点医护核实")
    (nearest,) = await proposed(formula.id, 1)
    await assignments.offer(ctx, formula.id, nearest, "最近的持证司机")

    elderly = await help_requests.submit(
        ctx,
        req(
            "尚勤路社区",
            "独居老人生活困难，需要送菜和常用药",
            RequestCategory.FOOD,
            Urgency.HIGH,
            description="82岁独居老人，行动不便，家中缺少蔬菜和降压药。",
            population_tags=[PopulationTag.ELDERLY, PopulationTag.CHRONIC_PATIENT],
            beneficiaries=1,
            needed_by=now + timedelta(hours=20),
            requester_address="新城区尚勤路社区3号楼2单元",
            health_details="高血压，服用硝苯地平缓释片。",
        ),
    )
    await help_requests.verify(ctx, elderly.id, "社区网格员上门核实")

    await help_requests.submit(
        ctx,
        req(
            "长延堡社区",
            "孕妇带幼儿，急需日常生活物资",
            RequestCategory.DAILY_SUPPLIES,
            Urgency.HIGH,
            description="孕32周，家中另有2岁幼儿，缺米面油和尿不湿。",
            population_tags=[PopulationTag.PREGNANT, PopulationTag.CHILD],
            beneficiaries=2,
            needed_by=now + timedelta(hours=30),
            requester_address="雁塔区长延堡社区7号楼",
            health_details="妊娠32周，妊娠期糖尿病。",
        ),
    )

    prevention = await help_requests.submit(
        ctx,
        req(
            "纺织城社区",
            "社区防疫物资短缺",
            RequestCategory.EPIDEMIC_PREVENTION_SUPPLIES,
            Urgency.NORMAL,
            description="核酸检测点缺防护服200套、N95口罩1000只、消毒液50桶。",
            population_tags=[PopulationTag.FRONT_LINE_WORKER],
            beneficiaries=1500,
            volunteers_needed=3,
            needed_by=now + timedelta(days=2),
            required_skills=["logistics"],
        ),
    )
    await help_requests.verify(ctx, prevention.id, "街道办确认")
    for worker_id in await proposed(prevention.id, 3):
        offer = await assignments.offer(ctx, prevention.id, worker_id)
        await assignments.accept(ctx, offer.id)
    await help_requests.start(ctx, prevention.id)
    await help_requests.fulfil(ctx, prevention.id, "物资已送达检测点")
    for assignment in await assignments.list_for_request(ctx, prevention.id, [AssignmentStatus.ACCEPTED]):
        await assignments.complete(ctx, assignment.id, Decimal("3.5"))

    await help_requests.submit(
        ctx,
        req(
            "世园社区",
            "滞留外地务工人员缺少食物",
            RequestCategory.FOOD,
            Urgency.HIGH,
            description="6名滞留务工人员住在工地宿舍，食物仅够一天。",
            population_tags=[PopulationTag.STRANDED_NON_RESIDENT],
            beneficiaries=6,
            needed_by=now + timedelta(hours=36),
        ),
    )
    await help_requests.submit(
        ctx,
        req(
            "雁南社区",
            "居家隔离居民焦虑失眠，希望心理疏导",
            RequestCategory.PSYCHOLOGICAL,
            Urgency.NORMAL,
            description="独自隔离第10天，情绪低落，夜间失眠。",
            beneficiaries=1,
            required_skills=["psychological_counseling"],
            health_details="自述焦虑、失眠，无既往病史。",
        ),
    )
    dialysis = await help_requests.submit(
        ctx,
        req(
            "西街社区",
            "透析患者需要就医转运",
            RequestCategory.MEDICAL_CARE,
            Urgency.CRITICAL,
            description="尿毒症患者每周三次透析，明早需送往医院。",
            population_tags=[PopulationTag.CHRONIC_PATIENT, PopulationTag.DISABLED],
            beneficiaries=1,
            needed_by=now + timedelta(hours=14),
            required_skills=["driving"],
            health_details="尿毒症，规律血液透析。",
        ),
    )
    await help_requests.verify(ctx, dialysis.id, "医院透析中心确认排班")
    duplicate = await help_requests.submit(
        ctx,
        req(
            "华清社区",
            "测试重复提交",
            RequestCategory.OTHER,
            Urgency.LOW,
            description="重复提交的测试请求。",
        ),
    )
    await help_requests.reject(ctx, duplicate.id, "重复提交")

    # The everyday stream: dozens of smaller requests across communities.
    titles = [
        ("老人代购蔬菜", RequestCategory.FOOD, [PopulationTag.ELDERLY]),
        ("慢性病患者代取药", RequestCategory.MEDICINE, [PopulationTag.CHRONIC_PATIENT]),
        ("残障人士生活物资", RequestCategory.DAILY_SUPPLIES, [PopulationTag.DISABLED]),
        ("一线人员防护用品", RequestCategory.EPIDEMIC_PREVENTION_SUPPLIES, [PopulationTag.FRONT_LINE_WORKER]),
        ("婴幼儿用品短缺", RequestCategory.DAILY_SUPPLIES, [PopulationTag.CHILD]),
        ("居家隔离心理支持", RequestCategory.PSYCHOLOGICAL, []),
    ]
    night: list[int] = []
    for i in range(48):
        title, category, tags = titles[i % len(titles)]
        community = community_rows[i % len(community_rows)]
        item = await help_requests.submit(
            ctx,
            req(
                community.name,
                f"{title}（{community.name}）",
                category,
                rng.choice(list(Urgency)),
                description=f"{community.name}居民{title}。",
                population_tags=tags,
                beneficiaries=rng.randrange(1, 12),
                needed_by=now + timedelta(hours=rng.randrange(3, 96)) if i % 4 else None,
            ),
        )
        if i % 3 == 0:
            await help_requests.verify(ctx, item.id, "电话核实")
        if i % 8 == 5:
            night.append(item.id)
    # Some came in during the night and nobody has got to them: past their targets already, so the
    # coordinators' board (the `situation` query) and `overdue` have something to show from the start.
    await ctx.session.execute(
        update(HelpRequest)
        .where(HelpRequest.id.in_(night))
        .values(created_at=now - timedelta(hours=26), status_changed_at=now - timedelta(hours=26))
    )
    return tb_drivers
