/**
 * End to end: a real `@discordjs/ws` WebSocketManager whose shards ask the queue
 * through `QueueIdentifyThrottler`, against a fake Discord; the queue under
 * `wrangler dev` and self-hosted (`npm run serve`, plain workerd).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { REST } from "@discordjs/rest";
import { type IIdentifyThrottler, WebSocketManager, WebSocketShardEvents } from "@discordjs/ws";
import { beforeAll, expect, test, vi } from "vitest";
import { QueueIdentifyThrottler, waitForIdentify } from "../packages/client/src/index.ts";
import type { DevServer } from "../tools/dev-server.ts";
import type { FakeDiscord } from "../tools/fake-discord.ts";
import { type QueueServer, type Runtime, runtimes, startSelfHost } from "../tools/self-host-server.ts";
import { expectPaced, intervalMs, queueAndDiscordForTests, recordingFetch, token } from "./support/e2e.ts";

const servers = queueAndDiscordForTests({ shards: 8, maxConcurrency: 2 });
let discord: FakeDiscord;
let queue: DevServer;
let selfHosted: QueueServer;
const queueUnder = (runtime: Runtime): QueueServer => (runtime === "wrangler" ? queue : selfHosted);
beforeAll(async () => {
	({ discord, queue } = servers);
	const vars = { IDENTIFY_INTERVAL_MS: String(intervalMs), DISCORD_API_URL: discord.apiUrl };
	selfHosted = await servers.resources.start({ start: () => startSelfHost({ vars }), stop: (server) => server.stop() });
});

function managerFor(shards: { shardCount: number; shardIds?: number[] }, throttler: IIdentifyThrottler) {
	return new WebSocketManager({
		token,
		intents: 0,
		rest: new REST({ api: discord.restApiBase }).setToken(token),
		...shards,
		buildIdentifyThrottler: () => throttler,
	});
}

test.for(runtimes)(
	"8 shards of a WebSocketManager get READY, IDENTIFYs an interval apart (%s)",
	async (runtime, context) => {
		const queue = queueUnder(runtime);
		const { fetch, requests } = recordingFetch();
		const manager = managerFor(
			{ shardCount: 8 },
			new QueueIdentifyThrottler({ url: `${queue.url}/e2e`, token, fetch }),
		);
		const ready = new Set<number>();
		manager.on(WebSocketShardEvents.Ready, (_data, shardId) => ready.add(shardId));
		const identifiesBefore = discord.identifies.length;
		try {
			await Promise.race([
				manager.connect(),
				sleep(20_000, undefined, { ref: false }).then(() => {
					throw new Error(`shards never READY: only ${[...ready].join(", ")}`);
				}),
			]);
		} finally {
			await manager.destroy();
		}
		const shardIds = [0, 1, 2, 3, 4, 5, 6, 7];
		expect([...ready].sort()).toEqual(shardIds);
		const identifies = discord.identifies.slice(identifiesBefore);
		expect(identifies.map((identify) => identify.shard).sort()).toEqual(shardIds);

		// The queue learned max_concurrency = 2 from the fake Discord, with the bot's token.
		expect(discord.gatewayBotAuthorizations).toContain(`Bot ${token}`);
		for (const request of requests) {
			expect(await request.result).toMatchObject({ status: 200, body: { bucket: request.shard % 2 } });
		}
		await expectPaced(context, `@discordjs/ws 2, 8 shards, ${runtime}`, identifies, 2);
	},
);

test.for(runtimes)("destroying a waiting shard aborts its HTTP request and rejects its wait (%s)", async (runtime) => {
	const queue = queueUnder(runtime);
	const queueUrl = `${queue.url}/e2e-abort`;
	// Shards 0, 2, 4 and 6 take bucket 0's next four slots, so shard 8 (bucket 0 too) waits ≥ 4 intervals.
	const fillers = new AbortController();
	const filled = [0, 2, 4, 6].map((shard) =>
		waitForIdentify(shard, { url: queueUrl, token, signal: fillers.signal }).catch(() => undefined),
	);
	const { fetch, requests } = recordingFetch();
	const throttler = new QueueIdentifyThrottler({ url: queueUrl, token, fetch });
	const waits: Promise<unknown>[] = [];
	const manager = managerFor(
		{ shardCount: 10, shardIds: [8] },
		{
			waitForIdentify: (shardId, signal) => {
				const wait = throttler.waitForIdentify(shardId, signal);
				waits.push(
					wait.then(
						() => "granted",
						(error: unknown) => error,
					),
				);
				return wait;
			},
		},
	);
	// Never settles once the shard is destroyed before READY.
	void manager.connect().catch(() => undefined);
	try {
		await vi.waitFor(() => expect(requests).toHaveLength(1), { timeout: 10_000, interval: 10 });
		await manager.destroy();
		const [request] = requests;
		expect(request?.signal?.aborted).toBe(true);
		expect(await request?.result).toMatchObject({ name: "AbortError" });
		expect(await waits[0]).toMatchObject({ name: "AbortError" });
		expect(discord.identifies.some((identify) => identify.shard === 8)).toBe(false);
	} finally {
		fillers.abort();
		await Promise.all(filled);
	}
});
