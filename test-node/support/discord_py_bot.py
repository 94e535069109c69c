"""A discord.py AutoShardedClient with GatewayQueueMixin, for test-node/discord-py.test.ts.

Reads API_URL (the fake Discord's /api/v10), QUEUE_URL and DISCORD_TOKEN; prints one JSON line
{"ready": [shard ids]} once every shard is READY, then closes.
"""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))

import discord  # noqa: E402
from gateway_queue import GatewayQueueMixin  # noqa: E402


class Bot(GatewayQueueMixin, discord.AutoShardedClient):
    async def on_shard_ready(self, shard_id):
        self.ready_shards.add(shard_id)
        if len(self.ready_shards) == self.shard_count:
            print(json.dumps({"ready": sorted(self.ready_shards)}), flush=True)
            await self.close()


async def main():
    discord.http.Route.BASE = os.environ["API_URL"]
    bot = Bot(intents=discord.Intents.none(), guild_ready_timeout=0.1, gateway_queue_url=os.environ["QUEUE_URL"])
    bot.ready_shards = set()
    await asyncio.wait_for(bot.start(os.environ["DISCORD_TOKEN"]), timeout=60)


asyncio.run(main())
