import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { captureConsole, spyOnLogLines } from "../support/console";
import { authorizationOf, fakeDiscord, gatewayBotBody } from "../support/discord-fake";
import {
	acquire,
	botRequest,
	evictObject,
	hold,
	intervalMs,
	maxConcurrencyOf,
	queueOnFakeClock,
	concurrencySourceOf as sourceOf,
	botToken as token,
	track,
	waitingCount,
} from "../support/queue";
import { storageDump } from "../support/storage-dump";

describe("GatewayQueue and Discord's /gateway/bot", () => {
	it("learns max_concurrency with the bot token before the first grant, asking once", async () => {
		const discord = fakeDiscord({ body: gatewayBotBody(16) });
		const { stub, clock } = await queueOnFakeClock();
		const results = await Promise.all(Array.from({ length: 16 }, (_, shard) => acquire(stub, botRequest(shard))));
		expect(results.every((result) => result.ok && result.grantedAtMs === clock.now)).toBe(true);
		expect(discord).toHaveBeenCalledTimes(1);
		expect(authorizationOf(discord)).toBe(`Bot ${token}`);
		expect(await sourceOf(stub)).toBe("discord");
	});

	it("refreshes at most once a minute, in the background, never per request", async () => {
		const discord = fakeDiscord({ body: gatewayBotBody(2) }, { body: gatewayBotBody(4) });
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		clock.advance(59_000);
		await acquire(stub, botRequest(1));
		expect(discord).toHaveBeenCalledTimes(1);

		clock.advance(1_000);
		expect(await acquire(stub, botRequest(2))).toMatchObject({ ok: true, bucket: 0 });
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		await vi.waitFor(async () => expect(await maxConcurrencyOf(stub)).toBe(4));
	});

	it("answers unauthorized when Discord rejects the token, without asking again for a minute", async () => {
		const discord = fakeDiscord({ status: 401, body: { message: "401: Unauthorized", code: 0 } });
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, botRequest(0))).toEqual({ ok: false, error: "unauthorized" });
		clock.advance(30_000);
		expect(await acquire(stub, botRequest(0))).toEqual({ ok: false, error: "unauthorized" });
		expect(discord).toHaveBeenCalledTimes(1);
	});

	it("paces as one bucket while Discord cannot be reached, logs it, and re-buckets once it answers", async () => {
		const discord = fakeDiscord({ fail: true }, { body: gatewayBotBody(16) });
		const logs = spyOnLogLines();
		const { stub, clock } = await queueOnFakeClock();
		const startMs = clock.now;

		expect(await acquire(stub, botRequest(0))).toMatchObject({ ok: true, bucket: 0 });
		expect(await sourceOf(stub)).toBe("fallback");
		expect(logs.mock.calls.flat().join("\n")).toMatch(
			/"event":"discord_gateway_bot","queue":"test","outcome":"unavailable"/,
		);
		clock.now = startMs + 4_500;
		expect(await acquire(stub, botRequest(1))).toMatchObject({ ok: true, bucket: 0, grantedAtMs: startMs + 4_500 });
		const waiting = await hold(stub, botRequest(2));

		clock.now = startMs + 5_000; // the first retry after a failure
		waiting.push(track(acquire(stub, botRequest(3))));
		await vi.waitFor(async () => expect(await sourceOf(stub)).toBe("discord"));
		expect(discord).toHaveBeenCalledTimes(2);
		// Shards 2 and 3 now have buckets of their own, yet neither may start
		// before the interval since the latest grant of any bucket has passed.
		expect(await waitingCount(stub)).toBe(2);
		clock.now = startMs + 4_500 + intervalMs - 1;
		await runDurableObjectAlarm(stub);
		expect(await waitingCount(stub)).toBe(2);
		clock.now = startMs + 4_500 + intervalMs;
		await runDurableObjectAlarm(stub);
		expect(await Promise.all(waiting)).toEqual([
			expect.objectContaining({ ok: true, shard: 2, bucket: 2, grantedAtMs: startMs + 4_500 + intervalMs }),
			expect.objectContaining({ ok: true, shard: 3, bucket: 3, grantedAtMs: startMs + 4_500 + intervalMs }),
		]);
	});

	it("answers 401 to every waiter when a refresh finds the token rejected", async () => {
		fakeDiscord({ body: gatewayBotBody(1) }, { status: 401 });
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		const waiting = await hold(stub, botRequest(1), botRequest(2));
		clock.advance(60_000);
		const late = acquire(stub, botRequest(3));
		expect(await Promise.all([...waiting, late])).toEqual([
			expect.objectContaining({ ok: true, shard: 1 }),
			{ ok: false, error: "unauthorized" },
			{ ok: false, error: "unauthorized" },
		]);
		expect(await waitingCount(stub)).toBe(0);
	});

	it("still answers 401 after an eviction, without asking Discord again within the minute", async () => {
		const discord = fakeDiscord({ status: 401 });
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, botRequest(0))).toEqual({ ok: false, error: "unauthorized" });
		const restarted = await evictObject(stub, clock);
		expect(await acquire(restarted, botRequest(0))).toEqual({ ok: false, error: "unauthorized" });
		expect(discord).toHaveBeenCalledTimes(1);
	});

	it("paces as one bucket after a restart while Discord is not due to be asked again", async () => {
		const discord = fakeDiscord({ fail: true });
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		const restarted = await evictObject(stub, clock);
		const [waiting] = await hold(restarted, botRequest(1));
		expect(await sourceOf(restarted)).toBe("fallback");
		expect(discord).toHaveBeenCalledTimes(1);
		clock.advance(intervalMs);
		await runDurableObjectAlarm(restarted);
		expect(await waiting).toMatchObject({ ok: true, bucket: 0 });
	});

	it("lets a request be cancelled while the bot's first /gateway/bot answer is awaited", async () => {
		let answer: () => void = () => {};
		const discord = fakeDiscord({ body: gatewayBotBody(4), after: new Promise((resolve) => (answer = resolve)) });
		const { stub } = await queueOnFakeClock();
		const request = botRequest(1);
		const pending = acquire(stub, request);
		await vi.waitFor(() => expect(discord).toHaveBeenCalled());
		expect(await stub.cancel(request.ticket)).toBe(true);
		answer();
		expect(await pending).toEqual({ ok: false, error: "cancelled" });
		expect(await acquire(stub, botRequest(5))).toMatchObject({ ok: true, bucket: 1, waitedMs: 0 });
	});

	it("waits Discord's Retry-After before asking again after a 429", async () => {
		const discord = fakeDiscord(
			{ status: 429, body: { message: "You are being rate limited.", retry_after: 30, global: false } },
			{ body: gatewayBotBody(1) },
		);
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		clock.advance(29_000);
		await acquire(stub, botRequest(null));
		expect(discord).toHaveBeenCalledTimes(1);
		clock.advance(1_000);
		void acquire(stub, botRequest(null));
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
	});

	it("never writes the token to a log line, whatever Discord answers", async () => {
		const logs = captureConsole();
		fakeDiscord(
			{ fail: true },
			{ status: 429, body: { retry_after: 1 } },
			{ status: 401 },
			{ body: gatewayBotBody(2) },
		);
		const { stub, clock } = await queueOnFakeClock();
		for (let attempt = 0; attempt < 4; attempt++) {
			await acquire(stub, botRequest(null));
			clock.advance(61_000);
		}
		await vi.waitFor(() => expect(logs.count()).toBeGreaterThanOrEqual(4));
		expect(logs.text()).not.toContain(token);
	});

	it("keeps the learnt max_concurrency and the refresh schedule across an eviction, but not the token", async () => {
		const discord = fakeDiscord({ body: gatewayBotBody(8) });
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		const stored = JSON.stringify(await storageDump(stub));
		expect(stored).toContain("maxConcurrency");
		expect(stored).not.toContain(token);
		expect(stored).not.toContain("MTIz");

		const restarted = await evictObject(stub, clock);
		clock.advance(10_000);
		expect(await acquire(restarted, botRequest(7))).toMatchObject({ ok: true, bucket: 7, waitedMs: 0 });
		expect(await sourceOf(restarted)).toBe("discord");
		expect(discord).toHaveBeenCalledTimes(1);
	});
});
