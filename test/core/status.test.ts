import { describe, expect, it } from "vitest";
import { noOutcomes } from "../../src/core/outcomes";
import { Pacer } from "../../src/core/pacing";
import {
	type QueueView,
	queueView,
	recentGrantsWindowMs,
	type StatusSource,
	shardsListedPerBucket,
} from "../../src/core/status";
import { waiter } from "../support/waiter";

const intervalMs = 5500;

function source(pacer: Pacer, extra: Partial<StatusSource> = {}): StatusSource {
	return {
		queue: "bot",
		pacer,
		concurrencySource: "var",
		startedAtMs: 100,
		totals: noOutcomes(),
		recentGrants: [],
		budget: null,
		heldByBudget: false,
		warnings: [],
		...extra,
	};
}

describe("queueStatus", () => {
	it("shapes an idle queue: no buckets, no estimate", () => {
		const pacer = new Pacer({ maxConcurrency: 16, intervalMs });
		expect(queueView(source(pacer), 1000)).toEqual<QueueView>({
			queue: "bot",
			maxConcurrency: 16,
			concurrencySource: "var",
			intervalMs: intervalMs,
			nowMs: 1000,
			startedAtMs: 100,
			waiting: 0,
			buckets: [],
			totals: { granted: 0, superseded: 0, cancelled: 0, overloaded: 0, unauthorized: 0, budget_reserve_reached: 0 },
			recentGrants: [],
			estimatedFinishAtMs: null,
			budget: null,
			heldByBudget: false,
			warnings: [],
		});
	});

	it("lists each waiting bucket with its shards in order, last and next grant, and the finish of the longest line", () => {
		const pacer = new Pacer({ maxConcurrency: 4, intervalMs, lastGrants: [[1, 10_000]] });
		for (const shard of [1, 5, 9, 2, null]) pacer.enqueue(waiter(shard));
		const status = queueView(source(pacer), 12_000);
		expect(status.waiting).toBe(5);
		expect(status.buckets).toEqual([
			{ bucket: 0, waiting: 1, shards: [null], lastGrantAtMs: null, nextGrantAtMs: 12_000 },
			{ bucket: 1, waiting: 3, shards: [1, 5, 9], lastGrantAtMs: 10_000, nextGrantAtMs: 10_000 + intervalMs },
			{ bucket: 2, waiting: 1, shards: [2], lastGrantAtMs: null, nextGrantAtMs: 12_000 },
		]);
		// Bucket 1: its head at 15,500, then two more intervals.
		expect(status.estimatedFinishAtMs).toBe(10_000 + 3 * intervalMs);
	});

	it("lists the first shards of a long line only, and counts them all", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs });
		for (let shard = 0; shard < shardsListedPerBucket + 50; shard++) pacer.enqueue(waiter(shard));
		const [line] = queueView(source(pacer), 0).buckets;
		expect(line?.waiting).toBe(shardsListedPerBucket + 50);
		expect(line?.shards).toHaveLength(shardsListedPerBucket);
		expect(line?.shards.at(-1)).toBe(shardsListedPerBucket - 1);
		expect(queueView(source(pacer), 0).estimatedFinishAtMs).toBe((shardsListedPerBucket + 49) * intervalMs);
	});

	it("passes the totals and budget through, as copies", () => {
		const totals = { ...noOutcomes(), granted: 7, superseded: 2 };
		const budget = { total: 1000, remaining: 990, reserve: 50, resetAtMs: 86_400_000 };
		const status = queueView(source(new Pacer({ maxConcurrency: 1, intervalMs }), { totals, budget }), 0);
		totals.granted++;
		expect(status.totals).toMatchObject({ granted: 7, superseded: 2 });
		expect(status.budget).toEqual({ total: 1000, remaining: 990, reserve: 50, resetAtMs: 86_400_000 });
	});

	it("shows the grants of the last five minutes, oldest first", () => {
		const nowMs = 1_000_000;
		const recentGrants = [
			{ atMs: nowMs - recentGrantsWindowMs - 1, bucket: 0, shard: 0 },
			{ atMs: nowMs - recentGrantsWindowMs, bucket: 1, shard: 1 },
			{ atMs: nowMs, bucket: 0, shard: null },
		];
		const status = queueView(source(new Pacer({ maxConcurrency: 2, intervalMs }), { recentGrants }), nowMs);
		expect(status.recentGrants).toEqual([
			{ atMs: nowMs - recentGrantsWindowMs, bucket: 1, shard: 1 },
			{ atMs: nowMs, bucket: 0, shard: null },
		]);
	});
});
