import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { QueueView } from "../../src/core/status";
import { recentGrantsWindowMs } from "../../src/core/status";
import { historyPruneIntervalMs } from "../../src/object/storage";
import { logLinesOf as linesOf, spyOnLogLines } from "../support/console";
import { fakeDiscord } from "../support/discord-fake";
import {
	acquire,
	acquireRequest,
	grantHistoryOf,
	hold,
	intervalMs,
	queueOnFakeClock,
	statusOf,
	untilWaiting,
} from "../support/queue";
import { storageDump } from "../support/storage-dump";

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8 share bucket 0.
describe("GatewayQueue status", () => {
	it("shows the waiting shards per bucket in order, the grants and an estimate of the finish", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const startMs = clock.now;
		await acquire(stub, acquireRequest(0));
		await acquire(stub, acquireRequest(1));
		await hold(stub, 4, 8);
		clock.advance(100);

		expect(await statusOf(stub)).toEqual<QueueView>({
			queue: "test",
			maxConcurrency: 4,
			concurrencySource: "var",
			intervalMs: intervalMs,
			nowMs: startMs + 100,
			startedAtMs: expect.any(Number),
			waiting: 2,
			buckets: [{ bucket: 0, waiting: 2, shards: [4, 8], lastGrantAtMs: startMs, nextGrantAtMs: startMs + intervalMs }],
			totals: { granted: 2, superseded: 0, cancelled: 0, overloaded: 0, unauthorized: 0, budget_reserve_reached: 0 },
			recentGrants: [
				{ atMs: startMs, bucket: 0, shard: 0 },
				{ atMs: startMs, bucket: 1, shard: 1 },
			],
			estimatedFinishAtMs: startMs + 2 * intervalMs,
			budget: null,
			heldByBudget: false,
			warnings: [expect.stringContaining("IDENTIFY_INTERVAL_MS is 2000 ms, below Discord's 5000 ms")],
		});
	});

	it("counts superseded and cancelled requests", async () => {
		const { stub } = await queueOnFakeClock();
		await acquire(stub, acquireRequest(0));
		const leaving = acquireRequest(8);
		const waiters = await hold(stub, 4, leaving);
		void acquire(stub, acquireRequest(4));
		await stub.cancel(leaving.ticket);
		await Promise.all(waiters);
		expect((await statusOf(stub)).totals).toEqual({
			granted: 1,
			superseded: 1,
			cancelled: 1,
			overloaded: 0,
			unauthorized: 0,
			budget_reserve_reached: 0,
		});
	});

	it("changes nothing when read: no slot taken, no alarm armed, no storage written", async () => {
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, acquireRequest(0));
		const [next] = await hold(stub, 4);
		const before = await storageDump(stub);

		clock.advance(intervalMs);
		for (let read = 0; read < 3; read++) await statusOf(stub);
		const status = await statusOf(stub);
		expect(status.buckets).toEqual([expect.objectContaining({ bucket: 0, waiting: 1, nextGrantAtMs: clock.now })]);
		expect(await storageDump(stub)).toEqual(before);

		await runDurableObjectAlarm(stub);
		expect(await next).toMatchObject({ ok: true, shard: 4 });
	});

	it("reads a queue nobody used without arming an alarm or storing anything", async () => {
		const { stub } = await queueOnFakeClock();
		const before = await storageDump(stub);
		const status = await statusOf(stub, "unused");
		expect(status).toMatchObject({ queue: "unused", waiting: 0, buckets: [], estimatedFinishAtMs: null });
		expect(await storageDump(stub)).toEqual(before);
		expect(Object.values(before.tables).flat()).toEqual([]);
		expect(before.kv).toEqual([]);
		expect(before.alarmAtMs).toBeNull();
	});
});

describe("GatewayQueue log lines", () => {
	it("writes one JSON line per round of grants and one per refusal, with queue, buckets, shards and waited_ms", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const logs = spyOnLogLines();
		await acquire(stub, acquireRequest(0));
		const [superseded] = await hold(stub, 4);
		clock.advance(300);
		const retry = acquire(stub, acquireRequest(4));
		await superseded;
		const leaving = acquireRequest(null);
		const cancelled = acquire(stub, leaving);
		await untilWaiting(stub, 2);
		await stub.cancel(leaving.ticket);
		await cancelled;
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		await retry;

		expect(linesOf(logs)).toEqual([
			{ event: "grants", queue: "test", granted: 1, buckets: [0], shards: [0], waited_ms: [0] },
			{ event: "rejection", queue: "test", bucket: 0, shard: 4, waited_ms: 300, outcome: "superseded" },
			{ event: "rejection", queue: "test", bucket: 0, shard: null, waited_ms: 0, outcome: "cancelled" },
			{ event: "grants", queue: "test", granted: 1, buckets: [0], shards: [4], waited_ms: [intervalMs] },
		]);
	});

	it("writes one line for a round that grants the heads of several buckets", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const logs = spyOnLogLines();
		await Promise.all([0, 1, 2].map((shard) => acquire(stub, acquireRequest(shard))));
		const waiting = await hold(stub, 4, 5, 6);
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		await Promise.all(waiting);

		const grantLines = linesOf(logs).filter((line) => line.event === "grants");
		expect(grantLines.at(-1)).toEqual({
			event: "grants",
			queue: "test",
			granted: 3,
			buckets: [0, 1, 2],
			shards: [4, 5, 6],
			waited_ms: [intervalMs, intervalMs, intervalMs],
		});
		expect(grantLines.reduce((sum, line) => sum + Number(line.granted), 0)).toBe(6);
	});

	it("logs an overloaded queue's refusal", async () => {
		const { stub } = await queueOnFakeClock();
		const logs = spyOnLogLines();
		for (let index = 0; index < 51; index++) void acquire(stub, acquireRequest(index * 4));
		expect(await acquire(stub, acquireRequest(9999 * 4))).toMatchObject({ error: "overloaded" });
		expect(linesOf(logs)).toContainEqual(
			expect.objectContaining({ event: "rejection", shard: 9999 * 4, outcome: "overloaded" }),
		);
	});

	it("logs a refusal for a rejected token without the token", async () => {
		const token = "MTIz.secret-token_in.logs";
		fakeDiscord({ status: 401, body: { message: "401: Unauthorized", code: 0 } });
		const { stub } = await queueOnFakeClock();
		const logs = spyOnLogLines();
		await acquire(stub, acquireRequest(3, { token }));
		expect(linesOf(logs)).toContainEqual({
			event: "rejection",
			queue: "test",
			bucket: 0,
			shard: 3,
			waited_ms: 0,
			outcome: "unauthorized",
		});
		expect(logs.mock.calls.join("\n")).not.toContain(token);
	});
});

describe("GatewayQueue's grant history", () => {
	it("deletes grants past the status's window, at most once per prune interval", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const grant = async (shard: number) =>
			expect(await acquire(stub, acquireRequest(shard))).toMatchObject({ ok: true });
		const shardsInHistory = async () => (await grantHistoryOf(stub)).map((granted) => granted.shard);
		await grant(1);
		clock.advance(recentGrantsWindowMs - 1);
		await grant(2);
		clock.advance(2);
		// Shard 1's grant is past the window, but the last prune was 2 ms ago.
		await grant(3);
		expect(await shardsInHistory()).toEqual([1, 2, 3]);
		clock.advance(historyPruneIntervalMs);
		await grant(4);
		expect(await shardsInHistory()).toEqual([2, 3, 4]);
	});
});
