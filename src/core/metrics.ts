/**
 * A queue's counters and histograms, kept by the object and persisted with its
 * rounds of grants, and their shape as Prometheus metric families. Pure: the
 * object records into them; `metricFamilies` reads a snapshot.
 */
import type { GatewayBotResult } from "./gateway-bot";
import { noOutcomes, type Outcome, type OutcomeTotals } from "./outcomes";

/** Seconds: a grant at once, a 200 ms interval's rounds, a 5.5 s interval's, and the long waits of a big start-up. */
export const waitBoundsSeconds = [0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5.5, 11, 22, 60, 120, 300, 600, 1800, 3600] as const;
/** Seconds past the due time: timer precision in the first buckets, a held or busy object in the last. */
export const latenessBoundsSeconds = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5] as const;
/** Above this many buckets, waiting requests are exposed as one total only (cardinality). */
export const maxBucketsLabelled = 32;

export interface Histogram {
	/** Observations per bound (not cumulative), and one more for those above the last. */
	counts: number[];
	sum: number;
}

export type GatewayBotOutcome = GatewayBotResult["kind"];

export interface QueueMetrics {
	/** When these counts began: the queue's first request, kept across restarts. */
	startedAtMs: number;
	/** How requests ended. */
	outcomes: OutcomeTotals;
	/** Requests held at the budget's reserve where a client that reads refusals would have been refused. */
	heldAtReserve: number;
	/** Requests that took their place back: the Worker calling again past its deadline, or after a restart. */
	reattached: { deadline: number; restart: number };
	/** Grants taken back because their request never received them (its client left first); still counted as granted. */
	handedBack: number;
	/** `/gateway/bot` calls by outcome. */
	gatewayBotCalls: Record<GatewayBotOutcome, number>;
	/** Of granted requests: from arrival to grant. */
	waitSeconds: Histogram;
	/** Of each grant: past the time it was due (its bucket's spacing, its arrival, starts coming back). */
	latenessSeconds: Histogram;
}

export function newQueueMetrics(startedAtMs: number): QueueMetrics {
	return {
		startedAtMs,
		outcomes: noOutcomes(),
		heldAtReserve: 0,
		reattached: { deadline: 0, restart: 0 },
		handedBack: 0,
		gatewayBotCalls: { ok: 0, unauthorized: 0, rate_limited: 0, unavailable: 0 },
		waitSeconds: emptyHistogram(waitBoundsSeconds),
		latenessSeconds: emptyHistogram(latenessBoundsSeconds),
	};
}

/** Counts kept from an older version of the object gain the fields added since. */
export function upgradeQueueMetrics(stored: Partial<QueueMetrics> & { startedAtMs: number }): QueueMetrics {
	const fresh = newQueueMetrics(stored.startedAtMs);
	return {
		...fresh,
		...stored,
		outcomes: { ...fresh.outcomes, ...stored.outcomes },
		gatewayBotCalls: { ...fresh.gatewayBotCalls, ...stored.gatewayBotCalls },
	};
}

function emptyHistogram(bounds: readonly number[]): Histogram {
	return { counts: Array.from({ length: bounds.length + 1 }, () => 0), sum: 0 };
}

export function observe(histogram: Histogram, bounds: readonly number[], value: number): void {
	const index = bounds.findIndex((bound) => value <= bound);
	const slot = index === -1 ? bounds.length : index;
	histogram.counts[slot] = (histogram.counts[slot] ?? 0) + 1;
	histogram.sum += value;
}

export function countOutcome(metrics: QueueMetrics, outcome: Outcome): void {
	metrics.outcomes[outcome]++;
}

/** What a scrape reads of the object at one instant, besides its counters. */
export interface MetricsSnapshot {
	metrics: QueueMetrics;
	maxConcurrency: number;
	intervalMs: number;
	waiting: number;
	/** Waiting requests per bucket with any; only when there are at most `maxBucketsLabelled` buckets. */
	waitingPerBucket: { bucket: number; waiting: number }[] | null;
	/** Places kept for a departed or not yet returned request. */
	placesKept: number;
	budget: { total: number; remaining: number; reserve: number; resetAtMs: number } | null;
	heldByBudget: boolean;
}
