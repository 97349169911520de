"""Example e-mail channel for yunshegong (not enabled by default): sends messages through an SMTP server.

Registers the channel `email_example` (hook `register_channels`). Core knows no e-mail addresses: this channel
takes messages whose payload carries one (`core.notify(..., payload={"email": "…", "subject": "…", "text": "…"})`).
Configure: YUNSHEGONG_EMAIL_EXAMPLE_HOST (required), _PORT (587), _USER, _PASSWORD, _FROM, _STARTTLS (true).
Uses the standard library's smtplib in a worker thread (no extra dependency); aiosmtplib would do the same
natively on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import core


class EmailChannel:
    name = "email_example"

    def __init__(
        self, host: str, port: int = 587, user: str = "", password: str = "", sender: str = "", starttls: bool = True
    ) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.sender = sender or user
        self.starttls = starttls

    def accepts(self, message: core.Message) -> bool:
        return "@" in str(message.payload.get("email", ""))

    async def send(self, message: core.Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = str(message.payload["email"])
        mail["Subject"] = str(message.payload.get("subject") or message.kind)
        # The delivery id as Message-ID: a repeat of the same delivery is recognisably the same message.
        mail["Message-ID"] = f"<delivery-{message.delivery_id}@yunshegong>"
        mail.set_content(str(message.payload.get("text", "")))
        try:
            await asyncio.to_thread(self._send, mail)
        except smtplib.SMTPRecipientsRefused:
            raise core.PermanentFailure("the mail server refused the recipient") from None
        except smtplib.SMTPResponseException as exc:
            # 5xx: permanent (bad address, policy); 4xx: try later.
            failure = core.PermanentFailure if exc.smtp_code >= 500 else core.TemporaryFailure
            raise failure(f"the mail server answered {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise core.TemporaryFailure(f"mail server unreachable ({type(exc).__name__})") from None

    def _send(self, mail: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=15) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(mail)


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="email_example", version="0.1.0", description="Example e-mail channel (SMTP)")


@core.hookimpl
def register_channels() -> list[Any]:
    env = os.environ.get
    host = env("YUNSHEGONG_EMAIL_EXAMPLE_HOST", "")
    if not host:
        return []
    return [
        EmailChannel(
            host,
            int(env("YUNSHEGONG_EMAIL_EXAMPLE_PORT", "587")),
            env("YUNSHEGONG_EMAIL_EXAMPLE_USER", ""),
            env("YUNSHEGONG_EMAIL_EXAMPLE_PASSWORD", ""),
            env("YUNSHEGONG_EMAIL_EXAMPLE_FROM", ""),
            env("YUNSHEGONG_EMAIL_EXAMPLE_STARTTLS", "true").lower() != "false",
        )
    ]
