/**
 * What the end-to-end client tests share: the queue (`wrangler dev`) and a fake Discord started
 * together and stopped together, a fetch that records the queue's answers, and the spacing check.
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, expect, type TestContext } from "vitest";
import { type DevServer, startDevServer } from "../../tools/dev-server.ts";
import {
	type FakeDiscord,
	type FakeDiscordOptions,
	type Identify,
	startFakeDiscord,
} from "../../tools/fake-discord.ts";
import { Resources } from "../../tools/resources.ts";

// Looks like a bot token (the queue checks the form); Discord here is the fake one.
export const token = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GfAkE0.e2e-test-token_not-a-real-one-0123456789";
export const intervalMs = 500;
// Two grants of a bucket are ≥ intervalMs apart; their IDENTIFYs may come closer by the jitter of the path
// between (HTTP answer, the library's hook, for Discordeno a new WebSocket, the send), which reached 130 ms
// on this 2-core machine busy with other suites. Without the queue the gaps are a few ms, so half the
// interval still catches any missing or wrong pacing; that each IDENTIFY follows its own grant is checked
// apart, exactly.
export const toleranceMs = 250;

export interface QueueAndDiscord {
	discord: FakeDiscord;
	queue: DevServer;
	resources: Resources;
}

/** A fake Discord and the queue pointed at it, at `intervalMs`; `resources.stopAll()` stops both. */
export async function startQueueAndDiscord(options: FakeDiscordOptions): Promise<QueueAndDiscord> {
	const resources = new Resources();
	const discord = await resources.start({
		start: () => startFakeDiscord({ token, ...options }),
		stop: (d) => d.close(),
	});
	const queue = await resources
		.start({
			start: () => startDevServer({ IDENTIFY_INTERVAL_MS: String(intervalMs), DISCORD_API_URL: discord.apiUrl }),
			stop: (server) => server.stop(),
		})
		.catch(async (error: unknown) => {
			await resources.stopAll();
			throw error;
		});
	return { discord, queue, resources };
}

/**
 * `startQueueAndDiscord` before the tests of the file (or `describe`) that calls it, and both stopped
 * after them; the object returned is filled in when they have started.
 */
export function queueAndDiscordForTests(options: FakeDiscordOptions): QueueAndDiscord {
	const servers = {} as QueueAndDiscord;
	beforeAll(async () => {
		Object.assign(servers, await startQueueAndDiscord(options));
	});
	afterAll(async () => {
		await servers.resources?.stopAll();
	});
	return servers;
}

export interface RecordedRequest {
	shard: number;
	signal: AbortSignal | undefined;
	/** The answer's status, JSON body and arrival (`performance.now()`, as the fake Discord's clock), or the error. */
	result: Promise<{ status: number; body: unknown; atMs: number } | Error>;
}

/** A fetch that keeps each request's signal and outcome. */
export function recordingFetch() {
	const requests: RecordedRequest[] = [];
	const record: typeof fetch = (input, init) => {
		const response = fetch(input, init);
		requests.push({
			shard: Number(new URL(String(input)).searchParams.get("shard")),
			signal: init?.signal ?? undefined,
			result: response.then(
				async (answer) => ({ status: answer.status, atMs: performance.now(), body: await answer.clone().json() }),
				(error: Error) => error,
			),
		});
		return response;
	};
	return { fetch: record, requests };
}

/**
 * Checks that each bucket's IDENTIFYs are at least the interval less the tolerance apart, and
 * returns the smallest gap of each bucket (ms, rounded).
 */
export function expectSpacing(identifies: Identify[], maxConcurrency: number): number[] {
	const smallestGaps: number[] = [];
	for (let bucket = 0; bucket < maxConcurrency; bucket++) {
		const times = identifies.filter((identify) => identify.shard % maxConcurrency === bucket).map((i) => i.atMs);
		const gapsMs = times.slice(1).map((atMs, index) => atMs - (times[index] ?? 0));
		expect(gapsMs.length, `bucket ${bucket} has fewer than two IDENTIFYs`).toBeGreaterThan(0);
		for (const gapMs of gapsMs) expect(gapMs).toBeGreaterThanOrEqual(intervalMs - toleranceMs);
		smallestGaps.push(Math.round(Math.min(...gapsMs)));
	}
	return smallestGaps;
}

/** Checks that every IDENTIFY of a shard came after a grant of that shard, one grant per IDENTIFY. */
export async function expectEachIdentifyGranted(identifies: Identify[], requests: RecordedRequest[]): Promise<void> {
	const grants = new Map<number, number[]>();
	for (const request of requests) {
		const result = await request.result;
		if (result instanceof Error || result.status !== 200) continue;
		expect(result.body).toMatchObject({ message: "You're free to connect now! :)", shard: request.shard });
		grants.set(
			request.shard,
			[...(grants.get(request.shard) ?? []), result.atMs].sort((a, b) => a - b),
		);
	}
	for (const identify of identifies) {
		const grantedAtMs = grants.get(identify.shard)?.shift();
		expect(grantedAtMs, `shard ${identify.shard} identified without a grant`).toBeDefined();
		expect(identify.atMs).toBeGreaterThanOrEqual(grantedAtMs ?? Number.POSITIVE_INFINITY);
	}
}

/**
 * Checks that each IDENTIFY followed a grant of its shard (when the queue's answers are given) and the
 * spacing, and adds each bucket's smallest gap to the test's report (an annotation, which the reporter
 * shows with the test where it keeps no log of a passing test).
 */
export async function expectPaced(
	{ annotate }: Pick<TestContext, "annotate">,
	what: string,
	identifies: Identify[],
	maxConcurrency: number,
	requests?: RecordedRequest[],
): Promise<void> {
	if (requests) await expectEachIdentifyGranted(identifies, requests);
	const smallestGaps = expectSpacing(identifies, maxConcurrency);
	await annotate(`${what}: smallest IDENTIFY gap per bucket ${smallestGaps.join(", ")} ms`);
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const deadline = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
	});
	try {
		return await Promise.race([promise, deadline]);
	} finally {
		clearTimeout(timer);
	}
}
