import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { minBudgetRefreshIntervalMs } from "../../src/core/refresh";
import { alarmBackstopMs } from "../../src/object/wake-ups";
import { smallBot as answer, fakeDiscord } from "../support/discord-fake";
import {
	acquire,
	armedAlarm,
	arrive,
	botRequest,
	storedBudgetOf as budgetOf,
	concurrencySourceOf,
	fireTimerOnTime,
	hold,
	intervalMs,
	queueOnFakeClock,
	statusBlindRequest as statusBlind,
	statusOf,
	track,
	untilWaiting,
	waitingCount,
} from "../support/queue";

describe("GatewayQueue holds clients that read no status at the budget's reserve", () => {
	it("grants down to the reserve, holds the rest without an answer, and grants them when Discord's figure frees starts", async () => {
		// 8 left, a reserve of 5 (5% of 100): three starts to grant.
		const discord = fakeDiscord(answer(8, 8), answer(8, 100));
		const { stub, clock } = await queueOnFakeClock();
		const requests = await arrive(
			stub,
			Array.from({ length: 8 }, (_, shard) => statusBlind(shard)),
			5,
		);
		expect(requests.filter((request) => request.settled())).toHaveLength(3);
		const status = await statusOf(stub);
		expect(status).toMatchObject({ heldByBudget: true, budget: { remaining: 5, reserve: 5 } });
		expect(status.totals.budget_reserve_reached).toBe(0);

		// Low: Discord is asked again 10 s on, by the timer, with no new request.
		const syncedAtMs = clock.now;
		expect(await armedAlarm(stub)).toBe(syncedAtMs + 10_000 + alarmBackstopMs);
		await fireTimerOnTime(stub, clock);
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		const results = await Promise.all(requests);
		expect(results.every((result) => result.ok)).toBe(true);
		// 100 less the 8 grants of the last minute, which Discord may not count yet.
		expect((await budgetOf(stub))?.remaining).toBe(100 - 3 - 5);
	});

	it("refuses, at once, only the requests that read refusals; the others stay in line", async () => {
		fakeDiscord(answer(1, 6));
		const { stub } = await queueOnFakeClock();
		expect(await acquire(stub, statusBlind(0))).toMatchObject({ ok: true });
		const held = track(acquire(stub, statusBlind(1)));
		expect(await acquire(stub, botRequest(2))).toMatchObject({ error: "budget_reserve_reached" });
		await untilWaiting(stub, 1);
		expect(held.settled()).toBe(false);
	});

	it("re-reads Discord from the timer while every shard holds one request, and stops at the reserve when another process spent starts", async () => {
		// 70 left of 1000, a reserve of 50; after the sixth grant another process of the bot has spent 10.
		const discord = fakeDiscord(answer(1, 70, { total: 1000 }), answer(1, 54, { total: 1000 }));
		const { stub, clock } = await queueOnFakeClock();
		const startMs = clock.now;
		const requests = await arrive(
			stub,
			Array.from({ length: 30 }, (_, shard) => statusBlind(shard)),
			29,
		);
		const grantsBy = async (untilMs: number) => {
			while (clock.timer && clock.timer.atMs <= untilMs) await fireTimerOnTime(stub, clock);
			await vi.waitFor(async () => expect(await waitingCount(stub)).toBeLessThan(30));
			return requests.filter((request) => request.settled()).length;
		};
		// One grant every 2 s; at 10 s the low budget's re-read, by the timer.
		expect(await grantsBy(startMs + 10_000)).toBe(6);
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		// 54 less the six grants of the last minute: below the reserve. Nothing more is granted...
		await vi.waitFor(async () => expect((await budgetOf(stub))?.remaining).toBe(48));
		expect(await grantsBy(startMs + 60_000)).toBe(6);
		// ...until the six grants age out of the last minute: 54 is then believed, four starts above the reserve.
		expect(await grantsBy(startMs + 90_000)).toBe(10);
		expect(discord.mock.calls.length).toBeGreaterThan(2);
		expect(await waitingCount(stub)).toBe(20);
	});

	it("asks Discord at the reset time, from the timer, and grants the held shards from the new figure", async () => {
		const discord = fakeDiscord(answer(1, 6, { resetAfterMs: 7_000 }), answer(1, 100));
		const { stub, clock } = await queueOnFakeClock();
		const startMs = clock.now;
		expect(await acquire(stub, statusBlind(0))).toMatchObject({ ok: true });
		const [held] = await hold(stub, statusBlind(1));
		// The clock alone gives nothing back: past the reset, starts come with Discord's figure.
		expect(await armedAlarm(stub)).toBe(startMs + 7_000 + alarmBackstopMs);
		await fireTimerOnTime(stub, clock);
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		expect(await held).toMatchObject({ ok: true, shard: 1 });
	});

	it("takes reset_after 0 as no refill, and asks again no sooner than 5 s later", async () => {
		const discord = fakeDiscord(answer(1, 6, { resetAfterMs: 0 }));
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, statusBlind(0))).toMatchObject({ ok: true });
		const [held] = await hold(stub, statusBlind(1));
		expect(await armedAlarm(stub)).toBe(clock.now + minBudgetRefreshIntervalMs + alarmBackstopMs);
		await fireTimerOnTime(stub, clock);
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
		expect(held.settled()).toBe(false);
		expect((await budgetOf(stub))?.remaining).toBe(5);
	});

	it.each([
		["total 0", answer(1, 0, { total: 0 }), 0],
		["remaining above total (counted as total)", answer(1, 500, { total: 7 }), 6],
	])("grants nothing past the reserve on %s", async (_, odd, grants) => {
		fakeDiscord(odd);
		const { stub } = await queueOnFakeClock();
		const shards = Array.from({ length: 8 }, (_, shard) => statusBlind(shard));
		const requests = await arrive(stub, shards, 8 - (grants > 0 ? 1 : 0));
		// max_concurrency 1: one grant now; the budget decides the rest.
		expect(requests.filter((request) => request.settled()).length).toBeLessThanOrEqual(grants);
		expect((await statusOf(stub)).budget).toMatchObject({
			remaining: grants > 0 ? 6 : 0,
			reserve: grants > 0 ? 1 : 0,
		});
	});
});

describe("GatewayQueue when asking Discord fails", () => {
	it("advances the back-off and releases the requests that waited for the first answer", async () => {
		const discord = fakeDiscord({ fail: true });
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, statusBlind(0))).toMatchObject({ ok: true });
		expect(await concurrencySourceOf(stub)).toBe("fallback");
		// Asked again only after the back-off, whatever arrives meanwhile.
		clock.advance(4_000);
		await acquire(stub, statusBlind(null));
		expect(discord).toHaveBeenCalledTimes(1);
		clock.advance(intervalMs);
		await acquire(stub, statusBlind(null));
		await vi.waitFor(() => expect(discord).toHaveBeenCalledTimes(2));
	});

	it("resets itself when storing Discord's answer fails, so the waiting requests get an error, not a hang", async () => {
		let release: () => void = () => {};
		fakeDiscord({ ...answer(1, 60), after: new Promise((resolve) => (release = resolve)) });
		const { stub } = await queueOnFakeClock();
		const arriving = Promise.allSettled([acquire(stub, statusBlind(0)), acquire(stub, statusBlind(1))]);
		await runInDurableObject(stub, (_queue, state) => {
			vi.spyOn(state.storage.kv, "put").mockImplementation(() => {
				throw new Error("disk on fire");
			});
		});
		release();
		expect(await arriving).toEqual([
			{ status: "rejected", reason: expect.objectContaining({ message: "storage failed" }) },
			{ status: "rejected", reason: expect.objectContaining({ message: "storage failed" }) },
		]);
	});
});
