import { DurableObject } from "cloudflare:workers";
import { type Config, configOf } from "../config/config";
import { identifyLagMs } from "../core/budget";
import type { GatewayBotResult } from "../core/gateway-bot";
import { type MetricsSnapshot, maxBucketsLabelled } from "../core/metrics";
import { type Grant, Pacer } from "../core/pacing";
import { type QueueStatus, queueStatus, recentGrantsKept, recentGrantsWindowMs } from "../core/status";
import { errorMessage, log } from "../log";
import { DiscordSync } from "./discord-sync";
import type { AcquireRequest, AcquireResult, QueueWaiter, Refused } from "./rpc";
import { QueueStorage } from "./storage";
import { QueueTelemetry } from "./telemetry";
import { Waiters } from "./waiters";
import { realTimer, type SetTimer, WakeUps } from "./wake-ups";

/**
 * After a restart, how long a restored place holds its bucket's turn for its
 * request to come back (the Worker calls again within a second, `src/edge/queue-call.ts`).
 */
export const restoredTurnHoldMs = 3_000;

/**
 * One queue: the waiting requests of one bot (or one tokenless queue name), paced
 * by a single alarm and a timer beside it. The last grant of each bucket, the
 * bot's daily budget and the waiting line (shard, ticket, arrival order) are
 * persisted; after a restart the Worker calls again for each waiting request
 * and it takes its place back. Each entry point reads the clock once, and again
 * only after awaiting Discord.
 */
export class GatewayQueue extends DurableObject<Env> {
	/** Test hooks: the clock, the timer beside the alarm (`src/object/wake-ups.ts`), the waiting lines (read only). */
	clock: () => number = Date.now;
	setTimer: SetTimer = realTimer;
	readonly pacer: Pacer<QueueWaiter>;

	readonly #config: Config;
	readonly #storage: QueueStorage;
	readonly #telemetry: QueueTelemetry;
	readonly #sync: DiscordSync;
	readonly #waiters = new Waiters();
	readonly #wakeUps: WakeUps;
	/** Whether the persisted waiting line has been read back (on the first call, which brings the clock). */
	#restored = false;
	/** Whether the budget held the line at the last round, and when starts last came back (grants are not late for the wait). */
	#heldByBudget = false;
	#startsBackAtMs = 0;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#config = configOf(env);
		this.#storage = new QueueStorage(ctx.storage, (error) => this.#reset(error));
		const stored = this.#storage.load();
		this.#telemetry = new QueueTelemetry(stored.metrics);
		this.#sync = new DiscordSync(stored, {
			discordApiUrl: this.#config.discordApiUrl,
			budgetReserve: this.#config.budgetReserve,
			grantsSince: (sinceMs) => this.#storage.grantsSince(sinceMs),
			waitUntil: (promise) => ctx.waitUntil(promise),
		});
		this.#wakeUps = new WakeUps(
			this.#storage,
			() => this.setTimer,
			() => this.#grantDue(this.clock()),
		);
		this.pacer = new Pacer<QueueWaiter>({
			maxConcurrency: stored.maxConcurrency ?? 1,
			intervalMs: this.#config.identifyIntervalMs,
			lastGrants: stored.lastGrants,
			retryGraceMs: this.#config.retryGraceMs,
		});
	}

	get concurrencySource() {
		return this.#sync.source;
	}

	/**
	 * Resolves when the request's shard may IDENTIFY, or with the reason it may not.
	 * A second call with the same ticket is the same request (the Worker calling
	 * again after its deadline or a restart): it shares the answer or takes the
	 * restored place back.
	 */
	acquire(request: AcquireRequest): Promise<AcquireResult> {
		const nowMs = this.clock();
		const known = this.#waiters.answerOf(request.ticket);
		if (known) {
			this.#telemetry.reattached("deadline", nowMs);
			return known;
		}
		return this.#waiters.track(request.ticket, this.#acquire(request, nowMs));
	}

	/**
	 * Answers a waiting request `cancelled` (its client left). Its shard's place is
	 * kept `RETRY_GRACE_MS` for the retry, never granted meanwhile. Returns whether it was still waiting.
	 */
	async cancel(ticket: string): Promise<boolean> {
		const nowMs = this.#start(this.clock());
		if (this.#waiters.arrived(ticket)) return true;
		if (!this.pacer.detach(ticket, nowMs)) return false;
		this.#answer(ticket, { ok: false, error: "cancelled" }, nowMs);
		await this.#grantDue(nowMs);
		return true;
	}

	override async alarm(): Promise<void> {
		this.#wakeUps.alarmFired();
		await this.#grantDue(this.#start(this.clock()));
	}

	/** The queue as it stands; reading it takes no slot, arms no alarm and writes nothing. */
	status(queue: string): QueueStatus {
		const nowMs = this.#start(this.clock());
		const metrics = this.#telemetry.metricsAt(nowMs);
		return queueStatus(
			{
				queue,
				pacer: this.pacer,
				concurrencySource: this.#sync.source,
				startedAtMs: metrics.startedAtMs,
				totals: metrics.outcomes,
				recentGrants: this.#storage.recentGrants(nowMs - recentGrantsWindowMs, recentGrantsKept),
				// `null`: a queue without a known bot enforces no budget.
				budget: this.#sync.view(),
				heldByBudget: this.#sync.startsAvailable() === 0,
				warnings: this.#config.warnings,
			},
			nowMs,
		);
	}

	/** What a scrape of `GET /_/metrics/{queue}` reads; like the status, it takes, arms and writes nothing. */
	metrics(): MetricsSnapshot {
		const nowMs = this.#start(this.clock());
		const labelled = this.pacer.maxConcurrency <= maxBucketsLabelled;
		return {
			metrics: this.#telemetry.metricsAt(nowMs),
			maxConcurrency: this.pacer.maxConcurrency,
			intervalMs: this.pacer.intervalMs,
			waiting: this.pacer.waitingCount,
			waitingPerBucket: labelled
				? this.pacer.waitingLines(0).map(({ bucket, waiting }) => ({ bucket, waiting }))
				: null,
			placesKept: this.pacer.placeCount - this.pacer.waitingCount,
			budget: this.#sync.view(),
			heldByBudget: this.#sync.startsAvailable() === 0,
		};
	}

	async #acquire(request: AcquireRequest, arrivedAtMs: number): Promise<AcquireResult> {
		this.#telemetry.queue = request.queue;
		let nowMs = this.#start(arrivedAtMs);
		const refuse = (result: Refused) => this.#refuse(request.shard, arrivedAtMs, result, nowMs);
		if (request.token === undefined) {
			this.#sync.useVar();
			this.#setConcurrency(this.#config.maxConcurrency);
		} else {
			// Bounded like the line itself, while Discord's first answer is awaited.
			if (this.#waiters.arrivingCount >= this.#config.maxWaitersPerQueue)
				return refuse({ ok: false, error: "overloaded" });
			this.#sync.bind(request.token);
			this.#waiters.arrive(request.ticket);
			// Only the very first request of a bot waits for Discord; later ones use what is known.
			this.#startRefreshIfDue(nowMs);
			if (this.#sync.source === "unknown") await this.#sync.refreshing;
			if (this.#sync.fallBackIfUnknown()) this.#setConcurrency(1);
			// Down to the reserve: Discord's figure on its way may free starts.
			if (this.#sync.refreshing && this.#sync.refusal(nowMs)) await this.#sync.refreshing;
			nowMs = this.clock();
			if (!this.#waiters.arrived(request.ticket)) return refuse({ ok: false, error: "cancelled" });
			if (this.#sync.tokenRejected) return refuse({ ok: false, error: "unauthorized" });
		}

		const budgetRefusal = this.#sync.refusal(nowMs);
		if (budgetRefusal && request.refusals) return refuse(budgetRefusal);
		// Held from its arrival; when the hold only begins with this round, the round counts it.
		if (budgetRefusal && this.#heldByBudget) this.#telemetry.heldAtReserve(1, nowMs);
		const answer = this.#waiters.wait(request.ticket, { shard: request.shard, arrivedAtMs });
		const { superseded, restored } = this.pacer.enqueue({
			ticket: request.ticket,
			shard: request.shard,
			enqueuedAtMs: nowMs,
			refusals: request.refusals,
		});
		if (superseded) this.#answer(superseded.ticket, { ok: false, error: "superseded" }, nowMs);
		if (restored) this.#telemetry.reattached("restart", nowMs);
		// Places kept for a retry count too: they hold memory.
		if (this.pacer.placeCount > this.#config.maxWaitersPerQueue) {
			this.pacer.cancel(request.ticket);
			this.#answer(request.ticket, { ok: false, error: "overloaded" }, nowMs);
		}
		await this.#grantDue(nowMs);
		return answer;
	}

	/**
	 * What every path does, arrival, timer, alarm, cancel and Discord's answer
	 * alike: asks Discord again when due, grants what is due within the budget,
	 * refuses at the reserve only the requests that read refusals, persists it
	 * all in one transaction and arms the next wake-up.
	 */
	async #grantDue(nowMs: number): Promise<void> {
		this.#startRefreshIfDue(nowMs);
		const available = this.#sync.startsAvailable();
		if (available > 0 && this.#heldByBudget) this.#startsBackAtMs = nowMs;
		const grants = this.pacer.takeDue(nowMs, available);
		const exhausted = available - grants.length <= 0;
		const refused = exhausted ? this.pacer.removeWhere((waiter) => waiter.refusals) : [];
		// The requests left are held from now on: count each once per hold.
		if (exhausted && !this.#heldByBudget) this.#telemetry.heldAtReserve(this.pacer.waitingCount, nowMs);
		this.#heldByBudget = exhausted && this.#sync.known() !== undefined;
		for (const grant of grants) this.#telemetry.granted(grant, this.#startsBackAtMs);
		const places = this.pacer.takeChanges();
		const metrics = this.#telemetry.takeChanged(nowMs);
		if (grants.length > 0 || places.length > 0 || metrics) {
			// On disk before any response leaves (output gate): a restart still spaces the
			// next grant of each bucket from these, and still counts the starts they spent.
			this.#storage.writeRound({
				grants,
				budget: this.#sync.spend(grants.length),
				places,
				metrics,
				forgetGrantsBeforeMs: nowMs - Math.max(recentGrantsWindowMs, identifyLagMs),
			});
			for (const grant of grants) this.#answerGrant(grant);
			this.#telemetry.logRound(grants);
		}
		const budgetRefusal = this.#sync.refusal(nowMs);
		if (budgetRefusal) for (const waiter of refused) this.#answer(waiter.ticket, budgetRefusal, nowMs);
		await this.#wakeUps.arm(this.#nextWakeAtMs(exhausted), nowMs);
	}

	/**
	 * The next grant (unless the budget allows none), the next place to drop, and,
	 * while anyone waits, the next time Discord is due: a queue whose shards each
	 * hold one long request re-reads the budget without a new request.
	 */
	#nextWakeAtMs(exhausted: boolean): number | null {
		const grantAtMs = exhausted ? undefined : this.pacer.nextDueAtMs();
		const callAtMs = this.pacer.waitingCount > 0 ? this.#sync.nextCallAtMs() : undefined;
		const times = [grantAtMs, this.pacer.nextExpiryAtMs(), callAtMs].filter((time) => time !== undefined);
		return times.length > 0 ? Math.min(...times) : null;
	}

	#startRefreshIfDue(nowMs: number): void {
		this.#sync.startIfDue(nowMs, (result) => this.#onGatewayBot(result, this.clock()));
	}

	/** Discord's answer: persisted, the buckets set from it, a rejected token's line answered; then a round. */
	async #onGatewayBot(result: GatewayBotResult, nowMs: number): Promise<void> {
		this.#sync.answered(result, nowMs);
		this.#telemetry.gatewayBotAnswered(result, this.#sync.stored.nextRefreshAtMs, nowMs);
		const dropped = this.#sync.tokenRejected ? this.pacer.drain() : [];
		this.#storage.writeSync(this.#sync.stored, this.pacer.takeChanges(), this.#telemetry.takeChanged(nowMs));
		for (const waiter of dropped) this.#answer(waiter.ticket, { ok: false, error: "unauthorized" }, nowMs);
		if (result.kind === "ok") this.#setConcurrency(result.gatewayBot.maxConcurrency);
		await this.#grantDue(nowMs);
	}

	/** Re-buckets the waiting shards when the number of buckets changes, and persists that. */
	#setConcurrency(maxConcurrency: number): void {
		if (maxConcurrency === this.pacer.maxConcurrency) return;
		this.pacer.setMaxConcurrency(maxConcurrency);
		this.#storage.writeConcurrency(maxConcurrency, this.pacer.lastGrants());
	}

	/** On the first call after a start: reads the waiting line back; its places wait, detached, for their requests. */
	#start(nowMs: number): number {
		if (this.#restored) return nowMs;
		this.#restored = true;
		const saved = this.#storage.places();
		if (saved.length > 0) {
			this.pacer.restore(saved, nowMs, restoredTurnHoldMs);
			this.#telemetry.restored(saved.length);
		}
		return nowMs;
	}

	#answerGrant({ waiter, bucket, grantedAtMs }: Grant<QueueWaiter>): void {
		this.#waiters.resolve(waiter.ticket, {
			ok: true,
			shard: waiter.shard,
			bucket,
			waitedMs: grantedAtMs - waiter.enqueuedAtMs,
			grantedAtMs,
		});
	}

	/** Answers a request in line with a refusal, counted and logged. */
	#answer(ticket: string, result: Refused, nowMs: number): void {
		const settled = this.#waiters.resolve(ticket, result);
		if (settled) this.#refuse(settled.shard, settled.arrivedAtMs, result, nowMs);
	}

	#refuse(shard: number | null, arrivedAtMs: number, result: Refused, nowMs: number): Refused {
		const bucket = this.pacer.bucketOf(shard);
		this.#telemetry.refused(result.error, { bucket, shard, waitedMs: nowMs - arrivedAtMs }, nowMs);
		return result;
	}

	/** Storage that fails: every waiting request gets an error the Worker retries against what is on disk. */
	#reset(error: unknown): never {
		log("queue_reset", { queue: this.#telemetry.queue, error: errorMessage(error) });
		this.ctx.abort("storage failed");
		throw error;
	}
}

export type { AcquireRequest, AcquireResult } from "./rpc";
export { timerLeadMs } from "./wake-ups";
