/**
 * End to end: a real `@discordjs/ws` WebSocketManager whose shards ask the queue
 * through `QueueIdentifyThrottler`, against a fake Discord; the queue under
 * `wrangler dev` and self-hosted (`npm run serve`, plain workerd).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { REST } from "@discordjs/rest";
import { type IIdentifyThrottler, WebSocketManager, WebSocketShardEvents } from "@discordjs/ws";
import { afterAll, beforeAll, expect, test, vi } from "vitest";
import { type DevServer, startDevServer } from "../scripts/dev-server.ts";
import { type FakeDiscord, startFakeDiscord } from "../scripts/fake-discord.ts";
import { type QueueServer, type Runtime, runtimes, startSelfHost } from "../scripts/self-host-server.ts";
import { QueueIdentifyThrottler, waitForIdentify } from "../src/client/index.ts";

// Looks like a bot token (the queue checks the form); Discord here is the fake one.
const token = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GfAkE0.e2e-test-token_not-a-real-one-0123456789";
const intervalMs = 400;
// Two grants of a bucket are ≥ intervalMs apart; their IDENTIFYs may come closer by the jitter of the path
// between (HTTP answer, throttler, WebSocket send), on a machine busy with the other test project. Without
// the queue the gaps are ~3 ms, so this tolerance still catches any missing or wrong pacing.
const toleranceMs = 100;
const repositoryRoot = join(import.meta.dirname, "..");

let discord: FakeDiscord;
let queue: DevServer;
let selfHosted: QueueServer;
const queueUnder = (runtime: Runtime): QueueServer => (runtime === "wrangler" ? queue : selfHosted);
beforeAll(async () => {
	discord = await startFakeDiscord({ token, shards: 8, maxConcurrency: 2 });
	const vars = { IDENTIFY_INTERVAL_MS: String(intervalMs), DISCORD_API_URL: discord.apiUrl };
	queue = await startDevServer(vars);
	selfHosted = await startSelfHost({ vars });
});
afterAll(async () => {
	await queue?.stop();
	await selfHosted?.stop();
	await discord?.close();
});

/** A fetch that keeps each request's signal and outcome (the grant's JSON, or the error). */
function recordingFetch() {
	const requests: { shard: number; signal: AbortSignal | undefined; result: Promise<unknown> }[] = [];
	const record: typeof fetch = (input, init) => {
		const response = fetch(input, init);
		requests.push({
			shard: Number(new URL(String(input)).searchParams.get("shard")),
			signal: init?.signal ?? undefined,
			result: response.then(
				(answer) => answer.clone().json(),
				(error: unknown) => error,
			),
		});
		return response;
	};
	return { fetch: record, requests };
}

function managerFor(shards: { shardCount: number; shardIds?: number[] }, throttler: IIdentifyThrottler) {
	return new WebSocketManager({
		token,
		intents: 0,
		rest: new REST({ api: discord.restApiBase }).setToken(token),
		...shards,
		buildIdentifyThrottler: () => throttler,
	});
}

test.for(runtimes)("8 shards of a WebSocketManager get READY, IDENTIFYs an interval apart (%s)", async (runtime) => {
	const queue = queueUnder(runtime);
	const { fetch, requests } = recordingFetch();
	const manager = managerFor({ shardCount: 8 }, new QueueIdentifyThrottler({ url: `${queue.url}/e2e`, token, fetch }));
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
	for (const request of requests) expect(await request.result).toMatchObject({ bucket: request.shard % 2 });

	for (const bucket of [0, 1]) {
		const times = identifies.filter((identify) => identify.shard % 2 === bucket).map((identify) => identify.atMs);
		const gapsMs = times.slice(1).map((atMs, index) => atMs - (times[index] ?? 0));
		expect(gapsMs).toHaveLength(3);
		for (const gapMs of gapsMs) expect(gapMs).toBeGreaterThanOrEqual(intervalMs - toleranceMs);
	}
});

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

test("the built entry gateway-queue/client runs on plain Node.js and gets a grant", async () => {
	const run = promisify(execFile);
	await run("npm", ["run", "build:client"], { cwd: repositoryRoot });
	const script = `
		import { waitForIdentify } from "gateway-queue/client";
		const grant = await waitForIdentify(5, { url: process.argv[1], token: process.argv[2] });
		console.log(JSON.stringify(grant));
	`;
	const { stdout } = await run(
		process.execPath,
		["--input-type=module", "-e", script, `${queue.url}/e2e-node`, token],
		{
			cwd: repositoryRoot,
			timeout: 20_000,
		},
	);
	expect(JSON.parse(stdout)).toMatchObject({ shard: 5, bucket: 1 });
});
