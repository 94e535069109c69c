/** The JSON bodies the service answers with, beside the errors of `./errors.ts`. */
import type { BudgetView } from "../core/budget";
import type { OutcomeTotals } from "../core/outcomes";
import type { ConcurrencySource, QueueView } from "../core/status";
import type { Granted } from "../object/rpc";

/** The reference server's grant message; clients may compare it verbatim. */
export const grantMessage = "You're free to connect now! :)";

export interface GrantReply {
	message: typeof grantMessage;
	/** Absent for a request that named no shard. */
	shard?: number;
	bucket: number;
	waited_ms: number;
	/** Epoch ms. */
	granted_at: number;
}

export function grantReply(grant: Granted): GrantReply {
	return {
		message: grantMessage,
		...(grant.shard !== null && { shard: grant.shard }),
		bucket: grant.bucket,
		waited_ms: grant.waitedMs,
		granted_at: grant.grantedAtMs,
	};
}

export interface HealthReply {
	status: "ok";
}

export const healthReply: HealthReply = { status: "ok" };

/** The bot's daily session-start budget, where the queue knows it. */
export interface BudgetReply {
	total: number;
	/** Starts left as far as the queue knows: Discord's last figure less the grants since. */
	remaining: number;
	/** Starts never granted (`BUDGET_RESERVE`), so a human can still recover the bot. */
	reserve: number;
	/** Epoch ms. */
	reset_at: number;
}

export function budgetReply({ total, remaining, reserve, resetAtMs }: BudgetView): BudgetReply {
	return { total, remaining, reserve, reset_at: resetAtMs };
}

/** `GET /_/queues/{queue}`; times are epoch ms. The fields are described in docs/status-and-dashboard.md. */
export interface QueueStatusReply {
	queue: string;
	max_concurrency: number;
	concurrency_source: ConcurrencySource;
	interval_ms: number;
	now: number;
	started_at: number;
	waiting: number;
	buckets: {
		bucket: number;
		waiting: number;
		shards: (number | null)[];
		last_grant_at: number | null;
		next_grant_at: number;
	}[];
	totals: OutcomeTotals;
	recent_grants: { at: number; bucket: number; shard: number | null }[];
	estimated_finish_at: number | null;
	budget: BudgetReply | null;
	held_by_budget: boolean;
	warnings: string[];
}

export function statusReply(view: QueueView): QueueStatusReply {
	return {
		queue: view.queue,
		max_concurrency: view.maxConcurrency,
		concurrency_source: view.concurrencySource,
		interval_ms: view.intervalMs,
		now: view.nowMs,
		started_at: view.startedAtMs,
		waiting: view.waiting,
		buckets: view.buckets.map((line) => ({
			bucket: line.bucket,
			waiting: line.waiting,
			shards: line.shards,
			last_grant_at: line.lastGrantAtMs,
			next_grant_at: line.nextGrantAtMs,
		})),
		totals: view.totals,
		recent_grants: view.recentGrants.map((grant) => ({ at: grant.atMs, bucket: grant.bucket, shard: grant.shard })),
		estimated_finish_at: view.estimatedFinishAtMs,
		budget: view.budget && budgetReply(view.budget),
		held_by_budget: view.heldByBudget,
		warnings: view.warnings,
	};
}
