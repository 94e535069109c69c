/**
 * A queue's waiting lines, recent grants and totals, viewed from the object's
 * state at one instant: what `GET /_/queues/{queue}` shows (`src/edge/replies.ts`
 * gives it its wire shape). Pure: the time is a parameter, so it is tested with
 * explicit clock values.
 */
import type { BudgetView } from "./budget";
import type { OutcomeTotals } from "./outcomes";
import type { Pacer, Waiter } from "./pacing";

/** Where a queue's `max_concurrency` comes from: the var (tokenless), Discord, one bucket until Discord answers. */
export type ConcurrencySource = "var" | "discord" | "fallback" | "unknown";

export interface RecentGrant {
	atMs: number;
	bucket: number;
	shard: number | null;
}

export interface BucketView {
	bucket: number;
	waiting: number;
	/** The first `shardsListedPerBucket` waiting shards, in the order they will be granted; `null` for a request without one. */
	shards: (number | null)[];
	lastGrantAtMs: number | null;
	nextGrantAtMs: number;
}

export interface QueueView {
	queue: string;
	maxConcurrency: number;
	concurrencySource: ConcurrencySource;
	intervalMs: number;
	nowMs: number;
	/** When the object's counters began: the totals count from then. */
	startedAtMs: number;
	waiting: number;
	/** Only buckets with waiting requests, in bucket order. */
	buckets: BucketView[];
	totals: OutcomeTotals;
	/** Grants of the last `recentGrantsWindowMs`, oldest first, at most `recentGrantsKept`. */
	recentGrants: RecentGrant[];
	/** When the last waiting request will be granted if nothing changes; `null` when nobody waits. */
	estimatedFinishAtMs: number | null;
	/** `null` when the queue knows no bot (tokenless, or Discord not answered yet): no budget is enforced. */
	budget: BudgetView | null;
	/** The budget is down to its reserve: waiting requests are held until starts come back. */
	heldByBudget: boolean;
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

export function queueView(source: StatusSource, nowMs: number): QueueView {
	const { pacer } = source;
	const nextGrantsAtMs = pacer.nextGrantsAtMs(nowMs);
	const buckets = pacer.waitingLines(shardsListedPerBucket).map(
		({ bucket, waiting, waiters }): BucketView => ({
			bucket,
			waiting,
			shards: waiters.map((waiter) => waiter.shard),
			lastGrantAtMs: pacer.lastGrants().get(bucket) ?? null,
			nextGrantAtMs: nextGrantsAtMs.get(bucket) ?? nowMs,
		}),
	);
	const finishes = buckets.map((line) => line.nextGrantAtMs + (line.waiting - 1) * pacer.intervalMs);
	return {
		queue: source.queue,
		maxConcurrency: pacer.maxConcurrency,
		concurrencySource: source.concurrencySource,
		intervalMs: pacer.intervalMs,
		nowMs,
		startedAtMs: source.startedAtMs,
		waiting: pacer.waitingCount,
		buckets,
		totals: { ...source.totals },
		recentGrants: source.recentGrants.filter((grant) => grant.atMs >= nowMs - recentGrantsWindowMs),
		estimatedFinishAtMs: finishes.length > 0 ? Math.max(...finishes) : null,
		budget: source.budget && { ...source.budget },
		heldByBudget: source.heldByBudget,
		warnings: [...source.warnings],
	};
}
