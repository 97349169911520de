"""The counseling part of the demo: the demo counselor's hours, a client with consent, the 14-day journal."""

from __future__ import annotations

from datetime import time

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
    await services.register_client(
        ctx, name="隔离居民甲", phone="13700001111", consent=True, consent_note="电话同意，录音存档"
    )
    await services.create_programme(ctx, "14天心理健康日志", PROMPTS)
