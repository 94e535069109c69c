import { describe, expect, it } from "vitest";
import { noOutcomes } from "../../src/core/outcomes";
import type { QueueView } from "../../src/core/status";
import { grantMessage, grantReply, statusReply } from "../../src/edge/replies";

describe("replies", () => {
	it("gives the status its wire shape: snake_case, epoch ms, every field", () => {
		const view: QueueView = {
			queue: "q",
			maxConcurrency: 2,
			concurrencySource: "discord",
			intervalMs: 5500,
			nowMs: 1000,
			startedAtMs: 10,
			waiting: 3,
			buckets: [{ bucket: 1, waiting: 3, shards: [1, 3, null], lastGrantAtMs: 900, nextGrantAtMs: 6400 }],
			totals: { ...noOutcomes(), granted: 4 },
			recentGrants: [{ atMs: 900, bucket: 1, shard: 5 }],
			estimatedFinishAtMs: 17_400,
			budget: { total: 1000, remaining: 900, reserve: 50, resetAtMs: 86_400_000 },
			heldByBudget: false,
			warnings: ["w"],
		};
		expect(statusReply(view)).toEqual({
			queue: "q",
			max_concurrency: 2,
			concurrency_source: "discord",
			interval_ms: 5500,
			now: 1000,
			started_at: 10,
			waiting: 3,
			buckets: [{ bucket: 1, waiting: 3, shards: [1, 3, null], last_grant_at: 900, next_grant_at: 6400 }],
			totals: { ...noOutcomes(), granted: 4 },
			recent_grants: [{ at: 900, bucket: 1, shard: 5 }],
			estimated_finish_at: 17_400,
			budget: { total: 1000, remaining: 900, reserve: 50, reset_at: 86_400_000 },
			held_by_budget: false,
			warnings: ["w"],
		});
		expect(statusReply({ ...view, budget: null }).budget).toBeNull();
	});

	it("answers a grant with the reference server's message, and the shard only when the request named one", () => {
		const grant = { ok: true as const, bucket: 0, waitedMs: 5, grantedAtMs: 7 };
		expect(grantReply({ ...grant, shard: 3 })).toEqual({
			message: grantMessage,
			shard: 3,
			bucket: 0,
			waited_ms: 5,
			granted_at: 7,
		});
		expect(grantReply({ ...grant, shard: null })).not.toHaveProperty("shard");
		expect(grantMessage).toBe("You're free to connect now! :)");
	});
});
