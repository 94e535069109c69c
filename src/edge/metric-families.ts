/** The queue's counters and state as Prometheus metric families (`GET /_/metrics/{queue}`). */
import {
	type Histogram,
	latenessBoundsSeconds,
	type MetricsSnapshot,
	maxBucketsLabelled,
	waitBoundsSeconds,
} from "../core/metrics";
import type { MetricFamily, Sample } from "./exposition";

const prefix = "gateway_queue";

/** The queue's metric families; every sample carries the queue's name. */
export function metricFamilies(queue: string, snapshot: MetricsSnapshot): MetricFamily[] {
	const { metrics } = snapshot;
	const labelled = (labels: Record<string, string>, value: number): Sample => ({ labels: { queue, ...labels }, value });
	const one = (value: number): Sample[] => [labelled({}, value)];
	const gauge = (name: string, help: string, samples: Sample[], unit?: string): MetricFamily => ({
		name: `${prefix}_${name}`,
		help,
		type: "gauge",
		samples,
		...(unit !== undefined && { unit }),
	});
	const counter = (name: string, help: string, samples: Sample[]): MetricFamily => ({
		name: `${prefix}_${name}`,
		help,
		type: "counter",
		samples,
	});
	const families: MetricFamily[] = [
		gauge("waiting_requests", "Requests waiting for a grant.", one(snapshot.waiting)),
		gauge(
			"kept_places",
			"Places kept for a request that left or has not come back after a restart.",
			one(snapshot.placesKept),
		),
		counter(
			"requests",
			"Requests that ended, by outcome.",
			Object.entries(metrics.outcomes).map(([outcome, count]) => labelled({ outcome }, count)),
		),
		counter("held_at_reserve", "Requests held at the budget's reserve instead of refused.", one(metrics.heldAtReserve)),
		counter(
			"reattached",
			"Requests that took their place back: after the Worker's deadline, or after a restart.",
			Object.entries(metrics.reattached).map(([after, count]) => labelled({ after }, count)),
		),
		counter(
			"grants_handed_back",
			"Grants taken back because their request never received them (its client left first).",
			one(metrics.handedBack),
		),
		histogram("wait_seconds", "Time from a request's arrival to its grant.", waitBoundsSeconds, metrics.waitSeconds),
		histogram(
			"grant_lateness_seconds",
			"Time past its due time at which each grant was made.",
			latenessBoundsSeconds,
			metrics.latenessSeconds,
		),
		gauge("start_time_seconds", "When these counters began (Unix time).", one(metrics.startedAtMs / 1000), "seconds"),
		gauge("max_concurrency", "Buckets the queue paces by.", one(snapshot.maxConcurrency)),
		gauge(
			"identify_interval_seconds",
			"Minimum spacing of two grants in one bucket.",
			one(snapshot.intervalMs / 1000),
			"seconds",
		),
		gauge(
			"held_by_budget",
			"1 while the budget is down to its reserve and waiting requests are held.",
			one(snapshot.heldByBudget ? 1 : 0),
		),
		counter(
			"discord_gateway_bot_requests",
			"Calls to Discord's GET /gateway/bot, by outcome.",
			Object.entries(metrics.gatewayBotCalls).map(([outcome, count]) => labelled({ outcome }, count)),
		),
	];
	if (snapshot.waitingPerBucket) {
		families.push(
			gauge(
				"bucket_waiting_requests",
				`Requests waiting per bucket with any (only up to ${maxBucketsLabelled} buckets).`,
				snapshot.waitingPerBucket.map(({ bucket, waiting }) => labelled({ bucket: String(bucket) }, waiting)),
			),
		);
	}
	const { budget } = snapshot;
	if (budget) {
		families.push(
			gauge("budget_total_starts", "The bot's daily session starts (Discord's total).", one(budget.total)),
			gauge("budget_remaining_starts", "Session starts left as the queue counts them.", one(budget.remaining)),
			gauge("budget_reserve_starts", "Session starts never granted (BUDGET_RESERVE).", one(budget.reserve)),
			gauge(
				"budget_reset_time_seconds",
				"When Discord resets the budget (Unix time).",
				one(budget.resetAtMs / 1000),
				"seconds",
			),
		);
	}
	return families;

	function histogram(name: string, help: string, bounds: readonly number[], values: Histogram): MetricFamily {
		return {
			name: `${prefix}_${name}`,
			help,
			type: "histogram",
			unit: "seconds",
			labels: { queue },
			bounds,
			counts: values.counts,
			sum: values.sum,
		};
	}
}
