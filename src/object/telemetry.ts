/**
 * What a queue tells about itself: its counters and histograms (persisted with
 * the next write, not per request) and its log lines.
 */
import type { GatewayBotResult } from "../core/gateway-bot";
import {
	countOutcome,
	latenessBoundsSeconds,
	newQueueMetrics,
	observe,
	type QueueMetrics,
	upgradeQueueMetrics,
	waitBoundsSeconds,
} from "../core/metrics";
import type { Refusal } from "../core/outcomes";
import type { Grant } from "../core/pacing";
import { log } from "../log";
import type { QueueWaiter } from "./rpc";

export class QueueTelemetry {
	/** The queue's name, as its requests give it: the object is named from a hash. */
	queue = "";
	#metrics: QueueMetrics | undefined;
	#changed: boolean;

	constructor(stored: QueueMetrics | undefined) {
		this.#metrics = stored && upgradeQueueMetrics(stored);
		this.#changed = stored === undefined;
	}

	/** The counters, begun at the first entry point's time when none were stored. */
	metricsAt(nowMs: number): QueueMetrics {
		this.#metrics ??= newQueueMetrics(nowMs);
		return this.#metrics;
	}

	/** The counters to write with the next transaction, once each change. */
	takeChanged(nowMs: number): QueueMetrics | undefined {
		if (!this.#changed) return undefined;
		this.#changed = false;
		return this.metricsAt(nowMs);
	}

	/** A grant of the round that makes it; `startsBackAtMs`: a grant is not late for the budget's hold. */
	granted({ waiter, grantedAtMs, dueAtMs }: Grant<QueueWaiter>, startsBackAtMs: number): void {
		const metrics = this.#change(grantedAtMs);
		countOutcome(metrics, "granted");
		observe(metrics.waitSeconds, waitBoundsSeconds, (grantedAtMs - waiter.enqueuedAtMs) / 1000);
		const latenessMs = grantedAtMs - Math.max(dueAtMs, startsBackAtMs);
		observe(metrics.latenessSeconds, latenessBoundsSeconds, Math.max(0, latenessMs) / 1000);
	}

	/**
	 * One line per round, not per grant: under `wrangler dev` each line costs
	 * about 5.7 ms (inspector traffic), and a round of 16 grants would write 16.
	 */
	logRound(grants: readonly Grant<QueueWaiter>[]): void {
		if (grants.length === 0) return;
		log("grants", {
			queue: this.queue,
			granted: grants.length,
			buckets: grants.map((grant) => grant.bucket),
			shards: grants.map((grant) => grant.waiter.shard),
			waited_ms: grants.map((grant) => grant.grantedAtMs - grant.waiter.enqueuedAtMs),
		});
	}

	/** A refusal: counted, and one line each. */
	refused(outcome: Refusal, request: { bucket: number; shard: number | null; waitedMs: number }, nowMs: number): void {
		countOutcome(this.#change(nowMs), outcome);
		log("rejection", {
			queue: this.queue,
			bucket: request.bucket,
			shard: request.shard,
			waited_ms: request.waitedMs,
			outcome,
		});
	}

	/** A request took its place back: the Worker calling again past its deadline, or after a restart. */
	reattached(after: "deadline" | "restart", nowMs: number): void {
		this.#change(nowMs).reattached[after]++;
	}

	/** A grant taken back: counted, and a line. */
	handedBack({ waiter, bucket, grantedAtMs }: Grant<QueueWaiter>, nowMs: number): void {
		this.#change(nowMs).handedBack++;
		log("grant_handed_back", { queue: this.queue, bucket, shard: waiter.shard, granted_ms_ago: nowMs - grantedAtMs });
	}

	heldAtReserve(requests: number, nowMs: number): void {
		if (requests > 0) this.#change(nowMs).heldAtReserve += requests;
	}

	gatewayBotAnswered(result: GatewayBotResult, nextRefreshAtMs: number, nowMs: number): void {
		this.#change(nowMs).gatewayBotCalls[result.kind]++;
		log("discord_gateway_bot", {
			queue: this.queue,
			outcome: result.kind,
			...(result.kind === "ok" && {
				max_concurrency: result.gatewayBot.maxConcurrency,
				session_starts_total: result.gatewayBot.sessionStartLimit.total,
				session_starts_remaining: result.gatewayBot.sessionStartLimit.remaining,
			}),
			...(result.kind === "unavailable" && { reason: result.reason }),
			...(result.kind === "rate_limited" && { retry_after_ms: result.retryAfterMs }),
			next_refresh_in_ms: nextRefreshAtMs - nowMs,
		});
	}

	restored(places: number): void {
		log("queue_restored", { queue: this.queue, places });
	}

	#change(nowMs: number): QueueMetrics {
		this.#changed = true;
		return this.metricsAt(nowMs);
	}
}
