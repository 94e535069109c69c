import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { spyOnLogLines } from "../support/console";
import { fakeDiscord, smallBotResetAfterMs as resetAfterMs, smallBot } from "../support/discord-fake";
import {
	acquire,
	acquireRequest,
	arrive,
	botRequest,
	storedBudgetOf as budgetOf,
	evictObject,
	intervalMs,
	maxConcurrencyOf,
	queueOnFakeClock,
	statusOf,
	waitingCount,
} from "../support/queue";

describe("GatewayQueue and the daily session-start budget", () => {
	it("spends one start per grant, and a restart neither forgets nor refills what was spent", async () => {
		const discord = fakeDiscord(smallBot(2, 60));
		const { stub, clock } = await queueOnFakeClock();
		const waiting = await arrive(
			stub,
			[0, 1, 2].map((shard) => botRequest(shard)),
			1,
		);
		expect(await budgetOf(stub)).toMatchObject({ total: 100, remaining: 58, resetAtMs: clock.now + resetAfterMs });
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		await Promise.all(waiting);
		expect((await budgetOf(stub))?.remaining).toBe(57);
		expect((await statusOf(stub)).budget).toEqual({
			total: 100,
			remaining: 57,
			reserve: 5,
			resetAtMs: (await budgetOf(stub))?.resetAtMs,
		});

		const restarted = await evictObject(stub, clock);
		clock.advance(intervalMs);
		expect(await acquire(restarted, botRequest(3))).toMatchObject({ ok: true });
		expect((await budgetOf(restarted))?.remaining).toBe(56);
		expect(discord).toHaveBeenCalledTimes(1);
	});

	it("answers every waiter at once when the next grant would cross the reserve, with the figures and the reset", async () => {
		fakeDiscord(smallBot(1, 7));
		const { stub, clock } = await queueOnFakeClock();
		const resetAtMs = clock.now + resetAfterMs;
		const waiting = await arrive(
			stub,
			[0, 1, 2, 3].map((shard) => botRequest(shard)),
			3,
		);
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);

		const refusal = {
			ok: false,
			error: "budget_reserve_reached",
			retryAfterMs: resetAtMs - clock.now,
			budget: { total: 100, remaining: 5, reserve: 5, resetAtMs },
		};
		expect(await Promise.all(waiting)).toEqual([
			expect.objectContaining({ ok: true, shard: 0 }),
			expect.objectContaining({ ok: true, shard: 1 }),
			refusal,
			refusal,
		]);
		expect(await waitingCount(stub)).toBe(0);
		expect((await statusOf(stub)).totals).toMatchObject({ granted: 2, budget_reserve_reached: 2 });
		clock.advance(intervalMs);
		expect(await acquire(stub, botRequest(4))).toEqual({ ...refusal, retryAfterMs: resetAtMs - clock.now });
	});

	it("grants again once the reset time has passed, and asks Discord for the new figure", async () => {
		const discord = fakeDiscord(smallBot(1, 6), smallBot(1, 100));
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, botRequest(0))).toMatchObject({ ok: true });
		expect(await acquire(stub, botRequest(1))).toMatchObject({ error: "budget_reserve_reached" });

		clock.advance(resetAfterMs);
		expect(await acquire(stub, botRequest(1))).toMatchObject({ ok: true });
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		// Discord's 100 does not yet count the grant made while it was asked.
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(99));
	});

	it("lets a lower figure from Discord win on the next refresh", async () => {
		const discord = fakeDiscord(smallBot(1, 60), smallBot(1, 40));
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		clock.advance(60_000);
		void acquire(stub, botRequest(1));
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		// 40, less the grant made while the answer was on its way.
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(39));
	});

	it("keeps counting recent grants as spent while Discord's higher figure has not caught up", async () => {
		// 10 left is low (twice the reserve): Discord is asked again after 10 s rather than a minute.
		const discord = fakeDiscord(smallBot(4, 10), smallBot(4, 10), smallBot(4, 10));
		const { stub, clock } = await queueOnFakeClock();
		await Promise.all([0, 1, 2, 3].map((shard) => acquire(stub, botRequest(shard))));
		expect((await budgetOf(stub))?.remaining).toBe(6);

		clock.advance(10_000);
		void acquire(stub, botRequest(null));
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		// Discord still says 10: the four grants count as spent, and so does the new one.
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(5));

		// A minute on, grants Discord never saw were never used: its figure is believed,
		// and the request waits for it rather than being refused at the reserve.
		clock.advance(60_000);
		expect(await acquire(stub, botRequest(null))).toMatchObject({ ok: true });
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(3));
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(9));
	});

	it("asks Discord again from the alarm while shards wait and the budget is low", async () => {
		const discord = fakeDiscord(smallBot(1, 10));
		const { stub, clock } = await queueOnFakeClock();
		const waiting = await arrive(
			stub,
			[0, 1, 2].map((shard) => botRequest(shard)),
			2,
		);
		clock.advance(10_000);
		await runDurableObjectAlarm(stub);
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		await Promise.all(waiting);
	});

	it("keeps pacing on the last known budget while Discord fails or rate-limits", async () => {
		const discord = fakeDiscord(smallBot(2, 60), { status: 503 }, { status: 429, body: { retry_after: 120 } });
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		for (const shard of [1, 2]) {
			clock.advance(60_000);
			expect(await acquire(stub, botRequest(shard))).toMatchObject({ ok: true, bucket: shard % 2 });
			await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(shard + 1));
		}
		expect(await maxConcurrencyOf(stub)).toBe(2);
		expect((await budgetOf(stub))?.remaining).toBe(57);
	});

	it("forgets the budget when Discord rejects the token", async () => {
		fakeDiscord(smallBot(1, 60), { status: 401 });
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		clock.advance(60_000);
		void acquire(stub, botRequest(1));
		await vi.waitFor(async () => expect(await budgetOf(stub)).toBeUndefined());
	});

	it("logs the budget Discord reported", async () => {
		fakeDiscord(smallBot(1, 60));
		const logs = spyOnLogLines();
		const { stub } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		expect(logs.mock.calls.flat().join("\n")).toMatch(/"session_starts_total":100,"session_starts_remaining":60/);
	});

	it("keeps no budget for a queue that knows no bot, and never refuses for one", async () => {
		const discord = fakeDiscord();
		const { stub, clock } = await queueOnFakeClock();
		for (let round = 0; round < 3; round++) {
			expect(await acquire(stub, acquireRequest(round))).toMatchObject({ ok: true });
			clock.advance(intervalMs);
		}
		expect(await budgetOf(stub)).toBeUndefined();
		expect((await statusOf(stub)).budget).toBeNull();
		expect(discord).not.toHaveBeenCalled();
	});
});
