"""gateway-queue for discord.py 2 (and nextcord): each shard asks the queue before it IDENTIFYs.

    class Bot(GatewayQueueMixin, commands.AutoShardedBot):
        pass

    bot = Bot(command_prefix="!", intents=intents, gateway_queue_url="https://gateway-queue.example.workers.dev/mybot")

5xx answers and connection errors are asked again after a jittered back-off, a 429's Retry-After
is waited out (up to max_retry_after), and anything else raises IdentifyQueueError: discord.py
then sends no IDENTIFY (at launch it logs the error and tries the shard again 5 s later). Only
aiohttp, which discord.py brings. MIT License.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from typing import Any, Optional
from urllib.parse import urlsplit

import aiohttp

GRANT_MESSAGE = "You're free to connect now! :)"
log = logging.getLogger("gateway_queue")
_sleep = asyncio.sleep
_random = random.random


class IdentifyQueueError(Exception):
    """A refusal, or an answer that is no grant: ``status``, ``code`` and ``retry_after`` (seconds, for a 429)."""

    def __init__(self, status: int, code: str, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(f"identify queue: HTTP {status} {code}: {message}")
        self.status, self.code, self.retry_after = status, code, retry_after


def check_url(url: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("gateway_queue_url must be the queue's absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("gateway_queue_url must carry no credentials: give gateway_queue_secret instead")
    if parts.query or parts.fragment:
        raise ValueError("gateway_queue_url must have no query or fragment: ?shard=N is added")
    return url


async def wait_for_identify(
    session: aiohttp.ClientSession,
    url: str,
    shard_id: int,
    *,
    token: Optional[str] = None,
    secret: Optional[str] = None,
    attempt_timeout: float = 60.0,
    backoff_base: float = 1.0,
    backoff_max: float = 30.0,
    max_retry_after: float = 60.0,
    warn_after: int = 3,
) -> dict[str, Any]:
    """Returns the grant (its JSON) once shard ``shard_id`` may IDENTIFY; raises IdentifyQueueError on a refusal."""
    headers = {"Gateway-Queue-Refusals": "json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
        if token is not None:
            headers["X-Bot-Token"] = token
    elif token is not None:
        headers["Authorization"] = f"Bot {token}"
    timeout = aiohttp.ClientTimeout(total=attempt_timeout, sock_connect=min(10.0, attempt_timeout))
    failures, last_warning = 0, float("-inf")
    while True:
        try:
            async with session.get(
                url,
                params={"shard": str(shard_id)},
                headers=headers,
                timeout=timeout,
                # A redirect would take the credentials elsewhere.
                allow_redirects=token is None and secret is None,
            ) as response:
                status, text = response.status, await response.text()
                retry_after_header = response.headers.get("Retry-After")
        except aiohttp.ClientError as error:
            status, text, retry_after_header, reason = 0, "", None, type(error).__name__
        except asyncio.TimeoutError:
            # A long wait in line, not a failure: ask again, and the new request takes the old one's place.
            continue
        body = _json(text)
        code = body.get("error") if isinstance(body.get("error"), str) else f"http_{status}"
        retry_after = _retry_after(body, retry_after_header)
        if status == 200 and body.get("message") == GRANT_MESSAGE:
            return body
        short_429 = status == 429 and (retry_after or 0) <= max_retry_after
        if status == 0 or short_429 or (status >= 500 and code != "misconfigured"):
            failures += 1
            step = min(backoff_max, backoff_base * 2 ** min(failures - 1, 52))
            wait = min(retry_after or 0, max_retry_after)
            delay = max(step / 2 + _random() * step / 2, wait + _random() * min(wait / 2, 5.0))
            reason = reason if status == 0 else f"HTTP {status} {code}"
            if failures >= warn_after and time.monotonic() - last_warning >= 60:
                last_warning = time.monotonic()
                log.warning(
                    "identify queue: shard %s: %s failed requests in a row, the last %s; asking again in %.1f s",
                    shard_id,
                    failures,
                    reason,
                    delay,
                )
            await _sleep(delay)
            continue
        if 200 <= status < 300:
            hint = "is the URL the queue itself (not /_/health, the dashboard, a proxy's page)?"
            raise IdentifyQueueError(status, "not_a_grant", f"no grant message: {hint}")
        if 300 <= status < 400:
            hint = "not followed while credentials are sent: give the queue's own URL"
            raise IdentifyQueueError(status, "redirect", hint)
        raise IdentifyQueueError(status, code, str(body.get("message", text[:200])), retry_after)


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(body: dict[str, Any], header: Optional[str]) -> Optional[float]:
    """Seconds: the body's retry_after_ms, else the header in seconds or as an HTTP date."""
    milliseconds = body.get("retry_after_ms")
    if isinstance(milliseconds, (int, float)) and 0 <= milliseconds < float("inf"):
        return milliseconds / 1000
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(header).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return seconds if 0 <= seconds < float("inf") else None


class GatewayQueueMixin:
    """Put it first: ``class Bot(GatewayQueueMixin, commands.AutoShardedBot)``, then ``Bot(..., gateway_queue_url=URL)``."""

    def __init__(
        self, *args: Any, gateway_queue_url: str, gateway_queue_secret: Optional[str] = None, **kwargs: Any
    ) -> None:
        self.gateway_queue_url = check_url(gateway_queue_url)
        self.gateway_queue_secret = gateway_queue_secret
        super().__init__(*args, **kwargs)

    async def before_identify_hook(self, shard_id: Optional[int], *, initial: bool = False) -> None:
        async with aiohttp.ClientSession() as session:
            token = self.http.token  # type: ignore[attr-defined]
            secret = self.gateway_queue_secret
            await wait_for_identify(session, self.gateway_queue_url, shard_id or 0, token=token, secret=secret)
