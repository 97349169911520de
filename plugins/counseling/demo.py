"""The counseling part of the demo: the demo counselor's hours and leave, a client with consent, the 14-day
journal (three low days: a risk flag) and a booked session."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy import select

import core
from core.models import Account
from core.services import scheduling
from plugins.counseling import services

PROMPTS = [
    "今天睡得怎么样？",
    "今天吃饭规律吗？",
    "今天和谁说过话？",
    "今天最让你担心的是什么？",
    "今天有没有做一点运动？",
    "今天有什么小事让你开心？",
    "今天的情绪像什么天气？",
    "今天你为自己做了什么？",
    "今天有没有感到孤单？",
    "今天你想对谁说谢谢？",
    "这一周你最想改变什么？",
    "今天你照顾好自己了吗？",
    "解除隔离后你最想做什么？",
    "回顾这两周，你想对自己说什么？",
]


async def load(ctx: core.ServiceContext) -> None:
    account = await ctx.session.scalar(select(Account).where(Account.username == "counselor"))
    if account is None or account.volunteer_id is None:
        return
    counselor = await services.register_counselor(
        ctx,
        account.volunteer_id,
        qualifications=["国家二级心理咨询师"],
        specialties=["anxiety", "grief", "perinatal"],
        languages=["zh", "shaanxi"],
        modes=["online", "offline"],
    )
    for weekday in range(5):
        for start, end in ((time(9), time(12)), (time(14), time(17, 30))):
            await scheduling.add_window(ctx, counselor.volunteer_id, weekday, start, end)
    client = await services.register_client(
        ctx, name="隔离居民甲", phone="13700001111", consent=True, consent_note="电话同意，录音存档"
    )
    programme = await services.create_programme(ctx, "14天心理健康日志", PROMPTS)
    # Three days into the journal with low moods: the trend opens a risk flag for the supervisors.
    today = services.today(ctx)
    enrolment = await services.enrol(ctx, client.id, programme.id, today - timedelta(days=2))
    for day, (mood, text) in enumerate([(3, "睡不好，担心家里老人"), (2, "一个人在家，很闷"), (2, "还是睡不着")]):
        await services.add_entry(ctx, enrolment.id, mood, text, on=enrolment.starts_on + timedelta(days=day))
    # The earliest online session with a counselor who fits, and the counselor's leave next month.
    await services.book_session(
        ctx, client_id=client.id, minutes=50, mode="online", meeting_link="https://meeting.example.cn/ysg-demo"
    )
    leave = ctx.now() + timedelta(days=30)
    await scheduling.add_exception(ctx, counselor.volunteer_id, leave, leave + timedelta(days=3), "年假")
