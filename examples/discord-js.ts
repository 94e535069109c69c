import { Client, GatewayIntentBits } from "discord.js";
import { QueueIdentifyThrottler } from "gateway-queue-client";

const token = process.env.DISCORD_TOKEN ?? "";
const client = new Client({
	intents: [GatewayIntentBits.Guilds],
	ws: {
		// Every shard, in every process, asks the queue before it IDENTIFYs.
		buildIdentifyThrottler: () =>
			new QueueIdentifyThrottler({ url: "https://gateway-queue.example.workers.dev/mybot", token }),
	},
});
await client.login(token);
