import asyncio

import aiohttp
from discord.ext import commands

QUEUE_URL = "https://gateway-queue.example.workers.dev/mybot"


class Bot(commands.AutoShardedBot):
    async def before_identify_hook(self, shard_id, *, initial=False):
        headers = {"Authorization": f"Bot {self.http.token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            while True:
                try:
                    async with session.get(QUEUE_URL, params={"shard": shard_id or 0}) as response:
                        if response.status == 200:
                            return
                        if response.status not in (429, 503):
                            raise RuntimeError(f"identify queue: {response.status} {await response.text()}")
                        delay = float(response.headers.get("Retry-After", 1))
                except aiohttp.ClientError:
                    delay = 1
                await asyncio.sleep(delay)
