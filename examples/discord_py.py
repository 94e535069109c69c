import os

import discord
from discord.ext import commands

# clients/python/gateway_queue.py of this repository, saved beside the bot.
from gateway_queue import GatewayQueueMixin


class Bot(GatewayQueueMixin, commands.AutoShardedBot):
    pass


bot = Bot(
    command_prefix="!",
    intents=discord.Intents.default(),
    gateway_queue_url="https://gateway-queue.example.workers.dev/mybot",
)
bot.run(os.environ["DISCORD_TOKEN"])
