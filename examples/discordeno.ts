// An ES module (top-level await): "type": "module" in package.json, or a .mjs file.
import { createGatewayManager } from "@discordeno/gateway";
import { withIdentifyQueue } from "gateway-queue-client";

const token = process.env.DISCORD_TOKEN ?? "";
const gateway = createGatewayManager({
	token,
	intents: 0,
	// The queue paces every process's shards; Discordeno's own 5.3 s per shard would only slow the start.
	spawnShardDelay: 0,
	events: {},
});
// Before spawnShards: every shard then asks the queue before each IDENTIFY, on every path.
withIdentifyQueue(gateway, { url: "https://gateway-queue.example.workers.dev/mybot", token });
await gateway.spawnShards();
