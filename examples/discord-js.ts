// An ES module (top-level await): "type": "module" in package.json, or a .mjs file.
import { Client, GatewayIntentBits } from "discord.js";
import { QueueIdentifyThrottler } from "gateway-queue-client";

const token = process.env.DISCORD_TOKEN ?? "";
// Built before the client, so a wrong option throws here rather than inside discord.js.
const throttler = new QueueIdentifyThrottler({ url: "https://gateway-queue.example.workers.dev/mybot", token });
const client = new Client({
	intents: [GatewayIntentBits.Guilds],
	// Every shard, in every process, asks the queue before it IDENTIFYs.
	ws: { buildIdentifyThrottler: () => throttler },
});
await client.login(token);
