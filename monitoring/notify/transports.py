"""Where a notice goes: a generic JSON webhook, a Slack incoming webhook, or Slack's Web API with a
bot token (one message per group, edited in place). Every transport implements :class:`Transport`;
the sender picks one from settings with :func:`from_settings`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings

from monitoring.notify.notice import Notice, json_payload, slack_follow_up, slack_message

JSON = "json"
SLACK = "slack"


class DeliveryError(Exception):
    """The receiver did not take the notice; ``status_code`` is its HTTP answer when it gave one."""

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


@dataclass(frozen=True, kw_only=True)
class MessageRef:
    """A posted Slack message (channel id and timestamp): what ``chat.update`` needs to edit it."""

    channel: str
    ts: str


@dataclass(frozen=True, kw_only=True)
class Sent:
    status_code: int
    message: MessageRef | None = None


class Transport(Protocol):
    name: str

    def send(self, notice: Notice, *, message: MessageRef | None) -> Sent:
        """Deliver ``notice``; ``message`` is the group's earlier message, if the transport keeps one."""
        ...


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After")) if headers and headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None


def post_json(
    url: str, body: dict[str, Any], *, timeout: float, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """POST ``body`` as JSON; returns the 2xx status and the answer, raises :class:`DeliveryError` otherwise."""
    if not url.startswith(("http://", "https://")):
        raise DeliveryError(f"not an http(s) URL: {url.split('://', 1)[0]}://…")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(
            f"the receiver answered HTTP {exc.code}", status_code=exc.code, retry_after=_retry_after(exc.headers)
        ) from exc
    except (OSError, ValueError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class Webhook:
    """One POST per notice: the generic JSON body, or Slack's incoming-webhook message.

    An incoming webhook cannot edit what it posted (Slack returns no message id), so after the first
    notice of an incident it posts a short follow-up naming only the changes.
    """

    url: str
    style: str
    timeout: float
    name: str = "webhook"

    def send(self, notice: Notice, *, message: MessageRef | None) -> Sent:
        if self.style == SLACK:
            body = slack_message(notice) if notice.first or notice.test else slack_follow_up(notice)
        else:
            body = json_payload(notice)
        status, _ = post_json(self.url, body, timeout=self.timeout)
        return Sent(status_code=status)


@dataclass(frozen=True, kw_only=True)
class SlackBot:
    """Slack's Web API with a bot token: ``chat.postMessage`` opens the group's message, ``chat.update``
    edits it on every later change, and a reminder is a reply in its thread."""

    api_url: str
    token: str
    channel: str
    timeout: float
    name: str = "slack-bot"

    def _call(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, raw = post_json(
            f"{self.api_url.rstrip('/')}/{method}",
            body,
            timeout=self.timeout,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        try:
            answer = json.loads(raw or b"{}")
        except ValueError as exc:
            raise DeliveryError(f"Slack {method} answered something other than JSON", status_code=status) from exc
        if not answer.get("ok"):
            raise DeliveryError(f"Slack {method} refused: {answer.get('error', 'unknown error')}", status_code=status)
        return status, answer

    def _post(self, notice: Notice) -> Sent:
        status, answer = self._call("chat.postMessage", {"channel": self.channel, **slack_message(notice)})
        return Sent(status_code=status, message=MessageRef(channel=answer["channel"], ts=answer["ts"]))

    def send(self, notice: Notice, *, message: MessageRef | None) -> Sent:
        if notice.test or message is None:
            return self._post(notice)
        if notice.repeat:
            status, _ = self._call(
                "chat.postMessage", {"channel": message.channel, "thread_ts": message.ts, **slack_follow_up(notice)}
            )
            return Sent(status_code=status, message=message)
        try:
            status, _ = self._call(
                "chat.update", {"channel": message.channel, "ts": message.ts, **slack_message(notice)}
            )
        except DeliveryError as exc:
            if "message_not_found" not in str(exc):
                raise
            return self._post(notice)  # deleted by someone: a new message carries the group on
        return Sent(status_code=status, message=message)


def from_settings() -> Transport | None:
    """The configured transport: a Slack bot when its token and channel are set, else the webhook URL."""
    timeout = settings.MONITORING_WEBHOOK_TIMEOUT
    if settings.MONITORING_SLACK_BOT_TOKEN and settings.MONITORING_SLACK_CHANNEL:
        return SlackBot(
            api_url=settings.MONITORING_SLACK_API_URL,
            token=settings.MONITORING_SLACK_BOT_TOKEN,
            channel=settings.MONITORING_SLACK_CHANNEL,
            timeout=timeout,
        )
    if settings.MONITORING_WEBHOOK_URL:
        return Webhook(url=settings.MONITORING_WEBHOOK_URL, style=settings.MONITORING_WEBHOOK_FORMAT, timeout=timeout)
    return None


def configured() -> bool:
    return from_settings() is not None


def receiver_host() -> str | None:
    """Where notices go, without secrets: the webhook's host, or Slack's API host and the channel."""
    transport = from_settings()
    if transport is None:
        return None
    url = transport.api_url if isinstance(transport, SlackBot) else transport.url
    try:
        host = urlsplit(url).netloc.rpartition("@")[2] or None
    except ValueError:
        return None
    return f"{host} {transport.channel}" if isinstance(transport, SlackBot) else host
