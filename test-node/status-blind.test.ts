/**
 * End to end: a client that reads no status, as twilight's HTTP queue example does
 * (any answer means IDENTIFY; only a failed connection makes it ask again), against
 * `wrangler dev` and a fake Discord. Each answer it gets is an IDENTIFY at the fake
 * gateway, so every non-grant the queue sent would show as one too many or too close.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { WebSocket } from "ws";
import { type DevServer, startDevServer } from "../tools/dev-server.ts";
import { type FakeDiscord, startFakeDiscord } from "../tools/fake-discord.ts";

const intervalMs = 500;
// An IDENTIFY follows its grant by the answer's way back through wrangler's proxy and a WebSocket send: on a
// busy machine two IDENTIFYs came up to 130 ms closer than their grants. The grants themselves are checked exactly.
const toleranceMs = intervalMs / 2;
const token = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GfAkE0.status-blind-test-token_0123456789";

let discord: FakeDiscord | undefined;
let queue: DevServer | undefined;
const clients: AbortController[] = [];

beforeAll(async () => {
	discord = await startFakeDiscord({ maxConcurrency: 1, remaining: 8 });
	queue = await startDevServer({
		IDENTIFY_INTERVAL_MS: String(intervalMs),
		DISCORD_API_URL: discord.apiUrl,
		// 8 left, 5 never granted: 3 starts for the queue to give.
		BUDGET_RESERVE: "5",
		MAX_WAITERS_PER_QUEUE: "5",
		WAIT_TIMEOUT_MS: "1000",
	});
}, 120_000);
afterAll(async () => {
	for (const client of clients) client.abort();
	await queue?.stop();
	await discord?.close();
}, 30_000);

/** When the queue said each grant was made (its `granted_at`), by shard: what the client ignores, the test reads. */
const grantedAt = new Map<number, number>();

/** One shard of a status-blind client: asks the queue, and on any answer sends IDENTIFY. */
async function statusBlindShard(path: string, shard: number, headers: Record<string, string> = {}): Promise<void> {
	const client = new AbortController();
	clients.push(client);
	for (;;) {
		try {
			const answer = await fetch(`${queue?.url}${path}?shard=${shard}`, { headers, signal: client.signal });
			const body = (await answer.json()) as { granted_at?: number };
			if (body.granted_at !== undefined) grantedAt.set(shard, body.granted_at);
			break;
		} catch {
			if (client.signal.aborted) return;
			await sleep(100);
		}
	}
	await identify(shard);
}

async function identify(shard: number): Promise<void> {
	const socket = new WebSocket(discord?.apiUrl.replace(/^http/, "ws").replace(/\/api\/v10$/, "") ?? "");
	await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
	socket.send(JSON.stringify({ op: 2, d: { token, intents: 0, properties: {}, shard: [shard, 1000] } }));
	await new Promise((resolve) => socket.once("message", resolve).once("close", resolve));
	socket.close();
}

const identifiesOf = (shards: number[]) =>
	(discord?.identifies ?? []).filter((identify) => shards.includes(identify.shard)).map((identify) => identify.atMs);

/** The smallest gap between two of these times (all of these shards share bucket 0). */
function smallestGapMs(times: number[]): number {
	const sorted = [...times].sort((a, b) => a - b);
	return Math.min(...sorted.slice(1).map((time, index) => time - (sorted[index] ?? 0)));
}

/** Every shard got a grant, the grants at least the interval apart, and its IDENTIFY only after it. */
function expectPaced(shards: number[]): void {
	const times = identifiesOf(shards);
	expect(times).toHaveLength(shards.length);
	expect(shards.every((shard) => grantedAt.has(shard))).toBe(true);
	expect(smallestGapMs(shards.map((shard) => grantedAt.get(shard) ?? 0))).toBeGreaterThanOrEqual(intervalMs);
	expect(smallestGapMs(times)).toBeGreaterThanOrEqual(intervalMs - toleranceMs);
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, index) => from + index);

describe("a client that reads no status", () => {
	test("at the budget's reserve: exactly the starts above it identify, the others are held", async () => {
		const shards = range(0, 8);
		for (const shard of shards) void statusBlindShard("/budget", shard, { authorization: `Bot ${token}` });
		await sleep(3 * intervalMs + 2000);
		const granted = shards.filter((shard) => grantedAt.has(shard));
		expect(granted).toHaveLength(3);
		expectPaced(granted);
		const status = await (
			await fetch(`${queue?.url}/_/queues/budget`, { headers: { authorization: `Bot ${token}` } })
		).json();
		expect(status).toMatchObject({ waiting: 5, held_by_budget: true, budget: { remaining: 5, reserve: 5 } });
	});

	test("at a full queue: held outside it, every shard identifies in turn, none too close", async () => {
		const shards = range(100, 10);
		await Promise.all(shards.map((shard) => statusBlindShard("/full", shard)));
		expectPaced(shards);
	});

	test("past WAIT_TIMEOUT_MS: called again in its place, every shard identifies in turn, none too close", async () => {
		const shards = range(200, 4);
		await Promise.all(shards.map((shard) => statusBlindShard("/deadline", shard)));
		expectPaced(shards);
		// The last waited 1.5 s, past the 1 s deadline, and was granted all the same.
		const grants = shards.map((shard) => grantedAt.get(shard) ?? 0);
		expect(Math.max(...grants) - Math.min(...grants)).toBeGreaterThanOrEqual(3 * intervalMs);
	});
});
