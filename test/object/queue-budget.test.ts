import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SessionBudget } from "../../src/core/budget";
import type { GatewayQueue } from "../../src/object/gateway-queue";
import { fakeDiscord, gatewayBotBody } from "../support/discord-fake";
import { acquire, acquireRequest, freshQueue, intervalMs, type QueueStub, useFakeClock, waitingCount } from "../support/queue";

const token = "MTIz.fake-token_for.tests";
const withToken = (shard: number | null) => acquireRequest(shard, { token });
const resetAfterMs = 3_600_000;
/** Discord's answer for a bot with a daily total of 100 (a reserve of 5 at the default 5%). */
const smallBot = (maxConcurrency: number, remaining: number) => ({
	body: gatewayBotBody(maxConcurrency, remaining, { total: 100, resetAfterMs }),
});

const budgetOf = (stub: QueueStub) =>
	runInDurableObject(stub, (_queue, state) => state.storage.kv.get<SessionBudget>("session_budget"));

afterEach(() => {
	vi.restoreAllMocks();
});

describe("GatewayQueue and the daily session-start budget", () => {
	it("spends one start per grant, and a restart neither forgets nor refills what was spent", async () => {
		const discord = fakeDiscord(smallBot(2, 60));
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		const waiting = [0, 1, 2].map((shard) => acquire(stub, withToken(shard)));
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(1));
		expect(await budgetOf(stub)).toMatchObject({ total: 100, remaining: 58, resetAtMs: clock.now + resetAfterMs });
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		await Promise.all(waiting);
		expect((await budgetOf(stub))?.remaining).toBe(57);
		expect((await stub.status("test")).budget).toEqual({
			total: 100,
			remaining: 57,
			reserve: 5,
			reset_at: (await budgetOf(stub))?.resetAtMs,
		});

		await evictDurableObject(stub);
		const restarted = env.GATEWAY_QUEUE.get(stub.id);
		await useFakeClock(restarted, clock);
		clock.advance(intervalMs);
		expect(await acquire(restarted, withToken(3))).toMatchObject({ ok: true });
		expect((await budgetOf(restarted))?.remaining).toBe(56);
		expect(discord).toHaveBeenCalledTimes(1);
	});

	it("answers every waiter at once when the next grant would cross the reserve, with the figures and the reset", async () => {
		fakeDiscord(smallBot(1, 7));
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		const resetAtMs = clock.now + resetAfterMs;
		const waiting = [0, 1, 2, 3].map((shard) => acquire(stub, withToken(shard)));
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(3));
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);

		const refusal = {
			ok: false,
			error: "budget_reserve_reached",
			retryAfterMs: resetAtMs - clock.now,
			budget: { total: 100, remaining: 5, reserve: 5, reset_at: resetAtMs },
		};
		expect(await Promise.all(waiting)).toEqual([
			expect.objectContaining({ ok: true, shard: 0 }),
			expect.objectContaining({ ok: true, shard: 1 }),
			refusal,
			refusal,
		]);
		expect(await waitingCount(stub)).toBe(0);
		expect((await stub.status("test")).totals).toMatchObject({ granted: 2, budget_reserve_reached: 2 });
		clock.advance(intervalMs);
		expect(await acquire(stub, withToken(4))).toEqual({ ...refusal, retryAfterMs: resetAtMs - clock.now });
	});

	it("grants again once the reset time has passed, and asks Discord for the new figure", async () => {
		const discord = fakeDiscord(smallBot(1, 6), smallBot(1, 100));
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		expect(await acquire(stub, withToken(0))).toMatchObject({ ok: true });
		expect(await acquire(stub, withToken(1))).toMatchObject({ error: "budget_reserve_reached" });

		clock.advance(resetAfterMs);
		expect(await acquire(stub, withToken(1))).toMatchObject({ ok: true });
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		// Discord's 100 does not yet count the grant made while it was asked.
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(99));
	});

	it("lets a lower figure from Discord win on the next refresh", async () => {
		const discord = fakeDiscord(smallBot(1, 60), smallBot(1, 40));
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		await acquire(stub, withToken(0));
		clock.advance(60_000);
		void acquire(stub, withToken(1));
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		// 40, less the grant made while the answer was on its way.
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(39));
	});

	it("keeps counting recent grants as spent while Discord's higher figure has not caught up", async () => {
		// 10 left is low (twice the reserve): Discord is asked again after 10 s rather than a minute.
		const discord = fakeDiscord(smallBot(4, 10), smallBot(4, 10), smallBot(4, 10));
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		await Promise.all([0, 1, 2, 3].map((shard) => acquire(stub, withToken(shard))));
		expect((await budgetOf(stub))?.remaining).toBe(6);

		clock.advance(10_000);
		void acquire(stub, withToken(null));
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		// Discord still says 10: the four grants count as spent, and so does the new one.
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(5));

		// A minute on, grants Discord never saw were never used: its figure is believed,
		// and the request waits for it rather than being refused at the reserve.
		clock.advance(60_000);
		expect(await acquire(stub, withToken(null))).toMatchObject({ ok: true });
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(3));
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(9));
	});

	it("asks Discord again from the alarm while shards wait and the budget is low", async () => {
		const discord = fakeDiscord(smallBot(1, 10));
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		const waiting = [0, 1, 2].map((shard) => acquire(stub, withToken(shard)));
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(2));
		clock.advance(10_000);
		await runDurableObjectAlarm(stub);
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		await Promise.all(waiting);
	});

	it("keeps pacing on the last known budget while Discord fails or rate-limits", async () => {
		const discord = fakeDiscord(smallBot(2, 60), { status: 503 }, { status: 429, body: { retry_after: 120 } });
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		await acquire(stub, withToken(0));
		for (const shard of [1, 2]) {
			clock.advance(60_000);
			expect(await acquire(stub, withToken(shard))).toMatchObject({ ok: true, bucket: shard % 2 });
			await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(shard + 1));
		}
		expect(await runInDurableObject(stub, (queue: GatewayQueue) => queue.pacer.maxConcurrency)).toBe(2);
		expect((await budgetOf(stub))?.remaining).toBe(57);
	});

	it("forgets the budget when Discord rejects the token", async () => {
		fakeDiscord(smallBot(1, 60), { status: 401 });
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		await acquire(stub, withToken(0));
		clock.advance(60_000);
		void acquire(stub, withToken(1));
		await vi.waitFor(async () => expect(await budgetOf(stub)).toBeUndefined());
	});

	it("logs the budget Discord reported", async () => {
		fakeDiscord(smallBot(1, 60));
		const logs = vi.spyOn(console, "log");
		const stub = freshQueue();
		await useFakeClock(stub);
		await acquire(stub, withToken(0));
		expect(logs.mock.calls.flat().join("\n")).toMatch(/"session_starts_total":100,"session_starts_remaining":60/);
	});

	it("keeps no budget for a queue that knows no bot, and never refuses for one", async () => {
		const discord = fakeDiscord();
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		for (let round = 0; round < 3; round++) {
			expect(await acquire(stub, acquireRequest(round))).toMatchObject({ ok: true });
			clock.advance(intervalMs);
		}
		expect(await budgetOf(stub)).toBeUndefined();
		expect((await stub.status("test")).budget).toBeNull();
		expect(discord).not.toHaveBeenCalled();
	});
});
