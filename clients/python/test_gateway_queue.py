"""Tests of gateway_queue against a local aiohttp server: python3 -m unittest test_gateway_queue (in this folder)."""

import asyncio
import unittest
from unittest import mock

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

import gateway_queue
from gateway_queue import GRANT_MESSAGE, GatewayQueueMixin, IdentifyQueueError, check_url, wait_for_identify

TOKEN = "MTA1.fake.token"
GRANT = {"message": GRANT_MESSAGE, "shard": 3, "bucket": 1}


class Stop(Exception):
    """Ends a wait from the patched sleep."""


class QueueTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.answers = []  # (status, json body or text, headers), one per request; the last repeats
        self.requests = []
        self.delays = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.answer)
        self.server = TestServer(app)
        await self.server.start_server()
        self.session = aiohttp.ClientSession()
        self.addAsyncCleanup(self.session.close)
        self.addAsyncCleanup(self.server.close)
        self.url = str(self.server.make_url("/mybot"))
        patcher = mock.patch.object(gateway_queue, "_random", lambda: 0.5)
        patcher.start()
        self.addCleanup(patcher.stop)

    async def answer(self, request):
        self.requests.append(request)
        status, body, headers = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    def sleep_until(self, calls):
        """A sleep that records its delays and raises Stop on call number ``calls``."""

        async def sleep(delay):
            self.delays.append(delay)
            if len(self.delays) >= calls:
                raise Stop()

        return mock.patch.object(gateway_queue, "_sleep", sleep)

    async def wait(self, **options):
        return await wait_for_identify(self.session, self.url, 3, token=TOKEN, **options)

    async def test_grant_with_the_headers_and_only_the_shard_parameter(self):
        self.answers = [(200, GRANT, {})]
        self.assertEqual(await self.wait(), GRANT)
        [request] = self.requests
        self.assertEqual(request.headers["Authorization"], f"Bot {TOKEN}")
        self.assertEqual(request.headers["Gateway-Queue-Refusals"], "json")
        self.assertEqual(dict(request.query), {"shard": "3"})

    async def test_secret_goes_as_bearer_and_the_token_in_x_bot_token(self):
        self.answers = [(200, GRANT, {})]
        await self.wait(secret="s3cret-0123456789abcdef")
        self.assertEqual(self.requests[0].headers["Authorization"], "Bearer s3cret-0123456789abcdef")
        self.assertEqual(self.requests[0].headers["X-Bot-Token"], TOKEN)

    async def test_503_is_retried_after_retry_after_plus_jitter(self):
        self.answers = [(503, {"error": "queue_unavailable"}, {"Retry-After": "1"}), (200, GRANT, {})]
        with self.sleep_until(99):
            self.assertEqual(await self.wait(), GRANT)
        self.assertEqual(self.delays, [1.25])

    async def test_a_proxys_day_long_retry_after_is_bounded(self):
        self.answers = [(503, "<html>maintenance</html>", {"Retry-After": "86400"}), (200, GRANT, {})]
        with self.sleep_until(99):
            await self.wait()
        self.assertEqual(self.delays, [62.5])

    async def test_connection_errors_back_off_doubling_and_warn_after_three(self):
        await self.server.close()
        with self.sleep_until(4), self.assertLogs("gateway_queue", "WARNING") as logs, self.assertRaises(Stop):
            await self.wait()
        self.assertEqual(self.delays, [0.75, 1.5, 3.0, 6.0])
        self.assertEqual(len(logs.output), 1)
        self.assertIn("3 failed requests in a row, the last ClientConnectorError", logs.output[0])
        self.assertNotIn(TOKEN, logs.output[0])

    async def test_a_short_429_is_waited_out(self):
        self.answers = [(429, {"error": "rate_limited", "retry_after_ms": 2000}, {}), (200, GRANT, {})]
        with self.sleep_until(99):
            await self.wait()
        self.assertEqual(self.delays, [2.5])

    async def test_a_long_429_raises_with_retry_after(self):
        self.answers = [(429, {"error": "budget_reserve_reached", "message": "reserve"}, {"Retry-After": "7200"})]
        with self.assertRaises(IdentifyQueueError) as caught:
            await self.wait()
        error = caught.exception
        self.assertEqual((error.status, error.code, error.retry_after), (429, "budget_reserve_reached", 7200))

    async def test_4xx_and_misconfigured_raise_at_once(self):
        refusals = [(401, "invalid_token"), (409, "superseded"), (400, "invalid_shard"), (500, "misconfigured")]
        for status, code in refusals:
            self.requests.clear()
            self.answers = [(status, {"error": code, "message": "the reason"}, {})]
            with self.assertRaises(IdentifyQueueError) as caught:
                await self.wait()
            self.assertEqual((caught.exception.status, caught.exception.code), (status, code))
            self.assertIn("the reason", str(caught.exception))
            self.assertEqual(len(self.requests), 1)

    async def test_a_200_without_the_grant_message_is_no_grant(self):
        for body in [{"status": "ok"}, "<!doctype html><title>Wi-Fi</title>", {"message": "You're free"}]:
            self.answers = [(200, body, {})]
            with self.assertRaises(IdentifyQueueError) as caught:
                await self.wait()
            self.assertEqual(caught.exception.code, "not_a_grant")

    async def test_redirects_are_not_followed_with_credentials(self):
        elsewhere = []

        async def collect(request):
            elsewhere.append(request)
            return web.json_response(GRANT)

        app = web.Application()
        app.router.add_get("/collect", collect)
        other = TestServer(app)
        await other.start_server()
        self.addAsyncCleanup(other.close)
        self.answers = [(307, "", {"Location": str(other.make_url("/collect"))})]
        with self.assertRaises(IdentifyQueueError) as caught:
            await self.wait()
        self.assertEqual(caught.exception.code, "redirect")
        self.assertEqual(elsewhere, [])

    async def test_the_mixin_asks_with_the_clients_token_and_checks_its_url(self):
        class Base:
            def __init__(self, **kwargs):
                self.kwargs = kwargs
                self.http = mock.Mock(token=TOKEN)

        class Bot(GatewayQueueMixin, Base):
            pass

        self.answers = [(200, GRANT, {})]
        bot = Bot(intents="none", gateway_queue_url=self.url)
        self.assertEqual(bot.kwargs, {"intents": "none"})
        await bot.before_identify_hook(None, initial=True)
        self.assertEqual(dict(self.requests[0].query), {"shard": "0"})
        self.assertEqual(self.requests[0].headers["Authorization"], f"Bot {TOKEN}")
        with self.assertRaisesRegex(ValueError, "gateway_queue_url must have no query"):
            Bot(gateway_queue_url=f"{self.url}?shard=1")


class CheckUrlTest(unittest.TestCase):
    def test_bad_urls_name_the_option(self):
        for url in ["queue.test/mybot", "wss://queue.test/", "https://a:b@queue.test/", "https://queue.test/?x=1", None]:
            with self.assertRaisesRegex(ValueError, "^gateway_queue_url must"):
                check_url(url)
        self.assertEqual(check_url("https://queue.test/mybot"), "https://queue.test/mybot")


if __name__ == "__main__":
    unittest.main()
