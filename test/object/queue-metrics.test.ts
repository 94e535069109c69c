import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { MetricsSnapshot } from "../../src/core/metrics";
import { fakeDiscord, gatewayBotBody } from "../support/discord-fake";
import {
	acquire,
	acquireRequest,
	arrive,
	botRequest,
	evictObject,
	fireTimerOnTime,
	hold,
	intervalMs,
	type QueueStub,
	queueOnFakeClock,
	resetObject,
	savePlaces,
	statusBlindRequest,
	statusOf,
	untilWaiting,
} from "../support/queue";
import { storageDump } from "../support/storage-dump";

const metricsOf = async (stub: QueueStub): Promise<MetricsSnapshot> => stub.metrics();

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8 share bucket 0.
describe("GatewayQueue metrics", () => {
	it("count a scripted sequence of grants and refusals, with each grant's wait and lateness", async () => {
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, acquireRequest(0))).toMatchObject({ ok: true });
		const [four, older] = await hold(stub, 4, 8);
		const newer = acquireRequest(8);
		const newerAnswer = acquire(stub, newer);
		expect(await older).toEqual({ ok: false, error: "superseded" });
		// The alarm 3 ms after the due time: a grant that waited 2.003 s and came 3 ms late.
		clock.advance(intervalMs + 3);
		await runDurableObjectAlarm(stub);
		expect(await four).toMatchObject({ ok: true, waitedMs: intervalMs + 3 });
		await stub.cancel(newer.ticket);
		expect(await newerAnswer).toEqual({ ok: false, error: "cancelled" });

		const { metrics, ...now } = await metricsOf(stub);
		expect(metrics.outcomes).toEqual({
			granted: 2,
			superseded: 1,
			cancelled: 1,
			overloaded: 0,
			unauthorized: 0,
			budget_reserve_reached: 0,
		});
		// Bounds 0.01 ... 5.5: one wait of 0 s, one of 2.003 s.
		expect(metrics.waitSeconds.counts.slice(0, 9)).toEqual([1, 0, 0, 0, 0, 0, 0, 1, 0]);
		expect(metrics.waitSeconds.sum).toBeCloseTo(2.003);
		// Bounds 0.001, 0.002, 0.005: one on time, one 3 ms late.
		expect(metrics.latenessSeconds.counts.slice(0, 3)).toEqual([1, 0, 1]);
		expect(now).toMatchObject({ maxConcurrency: 4, intervalMs, waiting: 0, placesKept: 1, budget: null });
	});

	it("are read without a change: no slot taken, no alarm armed, no storage written, no Discord call", async () => {
		const discord = fakeDiscord({ body: gatewayBotBody(1, 500) });
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, botRequest(0));
		const [next] = await hold(stub, botRequest(1));
		const before = await storageDump(stub);
		clock.advance(120_000);
		for (let read = 0; read < 3; read++) await metricsOf(stub);
		expect(await storageDump(stub)).toEqual(before);
		expect(discord).toHaveBeenCalledTimes(1);
		expect(next.settled()).toBe(false);
	});

	it("survive an eviction with the totals, the recent grants and their start time", async () => {
		const { stub, clock } = await queueOnFakeClock();
		for (const shard of [0, 1]) expect(await acquire(stub, acquireRequest(shard))).toMatchObject({ ok: true });
		const before = await statusOf(stub);
		const restarted = await evictObject(stub, clock);
		const after = await statusOf(restarted);
		expect(after).toMatchObject({
			startedAtMs: before.startedAtMs,
			totals: before.totals,
			recentGrants: before.recentGrants,
		});
		expect(after.totals.granted).toBe(2);
		expect(after.recentGrants).toHaveLength(2);
		expect((await metricsOf(restarted)).metrics.startedAtMs).toBe(before.startedAtMs);
	});

	it("count requests held at the reserve, /gateway/bot calls, and the budget", async () => {
		fakeDiscord({ body: gatewayBotBody(1, 7, { total: 100 }) });
		const { stub, clock } = await queueOnFakeClock();
		// 7 left, a reserve of 5: two grants; then a shard that reads no status is held, one that reads refusals refused.
		const held = await arrive(stub, [0, 1, 2].map(statusBlindRequest), 2);
		const [refused] = await hold(stub, botRequest(3));
		clock.advance(intervalMs);
		await fireTimerOnTime(stub, clock);
		expect(await refused).toMatchObject({ error: "budget_reserve_reached" });
		expect(held.filter((request) => request.settled())).toHaveLength(2);
		const snapshot = await metricsOf(stub);
		expect(snapshot).toMatchObject({
			heldByBudget: true,
			budget: { total: 100, remaining: 5, reserve: 5 },
			waiting: 1,
			waitingPerBucket: [{ bucket: 0, waiting: 1 }],
		});
		expect(snapshot.metrics).toMatchObject({
			heldAtReserve: 1,
			gatewayBotCalls: { ok: 1, unauthorized: 0, rate_limited: 0, unavailable: 0 },
			outcomes: { granted: 2, budget_reserve_reached: 1 },
		});
		// One more arriving while the hold lasts is counted once too.
		void acquire(stub, statusBlindRequest(4));
		await untilWaiting(stub, 2);
		expect((await metricsOf(stub)).metrics.heldAtReserve).toBe(2);
	});

	it("count a request that comes back with its ticket: past the Worker's deadline, and after a restart", async () => {
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, acquireRequest(0));
		const request = acquireRequest(4);
		void acquire(stub, request).catch(() => "reset");
		await untilWaiting(stub, 1);
		await savePlaces(stub, clock);
		void acquire(stub, request).catch(() => "reset");
		expect((await metricsOf(stub)).metrics.reattached).toEqual({ deadline: 1, restart: 0 });
		const restarted = await resetObject(stub, clock);
		void acquire(restarted, request);
		await untilWaiting(restarted, 1);
		expect((await metricsOf(restarted)).metrics.reattached).toEqual({ deadline: 0, restart: 1 });
	});
});
