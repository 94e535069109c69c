/**
 * What `GET /_/queues/{queue}` answers: a queue's waiting lines, recent grants
 * and totals, shaped from the object's state at one instant. Pure: the time is a
 * parameter, so it is tested with explicit clock values.
 */
import type { BudgetView } from "./budget";
import type { OutcomeTotals } from "./outcomes";
import type { Pacer, Waiter } from "./pacing";

/** Where a queue's `max_concurrency` comes from: the var (tokenless), Discord, one bucket until Discord answers. */
export type ConcurrencySource = "var" | "discord" | "fallback" | "unknown";

/** The bot's daily session-start budget, where the queue knows it. */
export interface BudgetStatus {
	total: number;
	/** Starts left as far as the queue knows: Discord's last figure less the grants since. */
	remaining: number;
	/** Starts never granted (`BUDGET_RESERVE`), so a human can still recover the bot. */
	reserve: number;
	/** Epoch ms. */
	reset_at: number;
}

export interface RecentGrant {
	/** Epoch ms. */
	at: number;
	bucket: number;
	shard: number | null;
}

export interface BucketStatus {
	bucket: number;
	waiting: number;
	/** The first `shardsListedPerBucket` waiting shards, in the order they will be granted; `null` for a request without one. */
	shards: (number | null)[];
	last_grant_at: number | null;
	next_grant_at: number;
}

export interface QueueStatus {
	queue: string;
	max_concurrency: number;
	concurrency_source: ConcurrencySource;
	interval_ms: number;
	now: number;
	/** When the object started: the totals count from then. */
	started_at: number;
	waiting: number;
	/** Only buckets with waiting requests, in bucket order. */
	buckets: BucketStatus[];
	totals: OutcomeTotals;
	/** Grants of the last `recentGrantsWindowMs`, oldest first, at most `recentGrantsKept`. */
	recent_grants: RecentGrant[];
	/** When the last waiting request will be granted if nothing changes; `null` when nobody waits. */
	estimated_finish_at: number | null;
	/** `null` when the queue knows no bot (tokenless, or Discord not answered yet): no budget is enforced. */
	budget: BudgetStatus | null;
	/** The budget is down to its reserve: waiting requests are held until starts come back. */
	held_by_budget: boolean;
	/** Settings that work but are unsafe against Discord, such as an interval below 5000 ms. */
	warnings: string[];
}

/** Keeps a status of a queue of thousands of waiters small: `waiting` still counts them all. */
export const shardsListedPerBucket = 100;
export const recentGrantsKept = 200;
export const recentGrantsWindowMs = 5 * 60_000;

export interface StatusSource {
	queue: string;
	pacer: Pacer<Waiter>;
	concurrencySource: ConcurrencySource;
	startedAtMs: number;
	totals: OutcomeTotals;
	/** Oldest first, at most `recentGrantsKept`, of the last `recentGrantsWindowMs`. */
	recentGrants: RecentGrant[];
	budget: BudgetView | null;
	heldByBudget: boolean;
	warnings: readonly string[];
}

export function queueStatus(source: StatusSource, nowMs: number): QueueStatus {
	const { pacer } = source;
	const buckets = pacer.waitingLines(shardsListedPerBucket).map(({ bucket, waiting, waiters }): BucketStatus => {
		return {
			bucket,
			waiting,
			shards: waiters.map((waiter) => waiter.shard),
			last_grant_at: pacer.lastGrants().get(bucket) ?? null,
			next_grant_at: pacer.nextGrantAtMs(bucket, nowMs) ?? nowMs,
		};
	});
	const finishes = buckets.map((line) => line.next_grant_at + (line.waiting - 1) * pacer.intervalMs);
	return {
		queue: source.queue,
		max_concurrency: pacer.maxConcurrency,
		concurrency_source: source.concurrencySource,
		interval_ms: pacer.intervalMs,
		now: nowMs,
		started_at: source.startedAtMs,
		waiting: pacer.waitingCount,
		buckets,
		totals: { ...source.totals },
		recent_grants: source.recentGrants.filter((grant) => grant.at >= nowMs - recentGrantsWindowMs),
		estimated_finish_at: finishes.length > 0 ? Math.max(...finishes) : null,
		budget: source.budget && budgetStatus(source.budget),
		held_by_budget: source.heldByBudget,
		warnings: [...source.warnings],
	};
}

export function budgetStatus({ total, remaining, reserve, resetAtMs }: BudgetView): BudgetStatus {
	return { total, remaining, reserve, reset_at: resetAtMs };
}
