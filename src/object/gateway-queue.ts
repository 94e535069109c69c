import { DurableObject } from "cloudflare:workers";
import { type Config, configOf } from "../config/config";
import { type MetricsSnapshot, maxBucketsLabelled } from "../core/metrics";
import { Pacer, sharedRoundWindowMs } from "../core/pacing";
import { type QueueView, queueView, recentGrantsKept, recentGrantsWindowMs } from "../core/status";
import { errorMessage, log } from "../log";
import { DiscordSync } from "./discord-sync";
import { Rounds } from "./rounds";
import type { AcquireRequest, AcquireResult, QueueWaiter, Refused } from "./rpc";
import { QueueStorage } from "./storage";
import { QueueTelemetry } from "./telemetry";
import { Waiters } from "./waiters";
import { realTimer, type SetTimer } from "./wake-ups";

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
	readonly #rounds: Rounds;
	/** Whether the persisted waiting line has been read back (on the first call, which brings the clock). */
	#restored = false;

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
		this.pacer = new Pacer<QueueWaiter>({
			maxConcurrency: stored.maxConcurrency ?? 1,
			intervalMs: this.#config.identifyIntervalMs,
			lastGrants: stored.lastGrants,
			retryGraceMs: this.#config.retryGraceMs,
			roundWindowMs: sharedRoundWindowMs,
		});
		this.#rounds = new Rounds({
			pacer: this.pacer,
			storage: this.#storage,
			sync: this.#sync,
			telemetry: this.#telemetry,
			waiters: this.#waiters,
			clock: () => this.clock(),
			setTimer: () => this.setTimer,
		});
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
		const nowMs = this.clock();
		this.#restoreOnce(nowMs);
		if (this.#waiters.arrived(ticket)) return true;
		if (!this.pacer.detach(ticket, nowMs)) return false;
		this.#rounds.answer(ticket, { ok: false, error: "cancelled" }, nowMs);
		await this.#rounds.grantDue(nowMs);
		return true;
	}

	/**
	 * Takes back a grant whose request never received it: the Worker saw its client
	 * leave before the answer came, so nobody IDENTIFYs with it. Its bucket's slot
	 * and its start are given back and the shard keeps its place at the head of its
	 * line for its retry. Returns whether it did: a grant followed by another of its
	 * bucket, or made before a restart, stays spent.
	 */
	async handBack(ticket: string): Promise<boolean> {
		const nowMs = this.clock();
		this.#restoreOnce(nowMs);
		return this.#rounds.handBack(ticket, nowMs);
	}

	override async alarm(): Promise<void> {
		this.#rounds.alarmFired();
		const nowMs = this.clock();
		this.#restoreOnce(nowMs);
		await this.#rounds.grantDue(nowMs);
	}

	/** The queue as it stands; reading it takes no slot, arms no alarm and writes nothing. */
	status(queue: string): QueueView {
		const nowMs = this.clock();
		this.#restoreOnce(nowMs);
		const metrics = this.#telemetry.metricsAt(nowMs);
		return queueView(
			{
				queue,
				pacer: this.pacer,
				concurrencySource: this.#sync.source,
				startedAtMs: metrics.startedAtMs,
				totals: metrics.outcomes,
				recentGrants: this.#storage.recentGrants(nowMs - recentGrantsWindowMs, recentGrantsKept),
				// `null`: a queue without a known bot enforces no budget.
				budget: this.#sync.view(),
				heldByBudget: this.#sync.atReserve(),
				warnings: this.#config.warnings,
			},
			nowMs,
		);
	}

	/** What a scrape of `GET /_/metrics/{queue}` reads; like the status, it takes, arms and writes nothing. */
	metrics(): MetricsSnapshot {
		const nowMs = this.clock();
		this.#restoreOnce(nowMs);
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
			heldByBudget: this.#sync.atReserve(),
		};
	}

	async #acquire(request: AcquireRequest, arrivedAtMs: number): Promise<AcquireResult> {
		this.#telemetry.queue = request.queue;
		this.#restoreOnce(arrivedAtMs);
		let nowMs = arrivedAtMs;
		const refuse = (result: Refused) => this.#rounds.refuse(request.shard, arrivedAtMs, result, nowMs);
		if (request.token === undefined) {
			this.#sync.useVar();
			this.#rounds.setConcurrency(this.#config.maxConcurrency);
		} else {
			// Bounded like the line itself, while Discord's first answer is awaited.
			if (this.#waiters.arrivingCount >= this.#config.maxWaitersPerQueue)
				return refuse({ ok: false, error: "overloaded" });
			this.#sync.bind(request.token);
			this.#waiters.arrive(request.ticket);
			// Only the very first request of a bot waits for Discord; later ones use what is known.
			this.#rounds.startRefreshIfDue(nowMs);
			if (this.#sync.source === "unknown") await this.#sync.refreshing;
			if (this.#sync.fallBackIfUnknown()) this.#rounds.setConcurrency(1);
			// Down to the reserve: Discord's figure on its way may free starts.
			if (this.#sync.refreshing && this.#sync.refusal(nowMs)) await this.#sync.refreshing;
			nowMs = this.clock();
			if (!this.#waiters.arrived(request.ticket)) return refuse({ ok: false, error: "cancelled" });
			if (this.#sync.tokenRejected) return refuse({ ok: false, error: "unauthorized" });
		}

		const budgetRefusal = this.#sync.refusal(nowMs);
		if (budgetRefusal && request.refusals) return refuse(budgetRefusal);
		// Held from its arrival; when the hold only begins with this round, the round counts it.
		if (budgetRefusal && this.#rounds.heldByBudget) this.#telemetry.heldAtReserve(1, nowMs);
		const answer = this.#waiters.wait(request.ticket, { shard: request.shard, arrivedAtMs });
		const { superseded, restored } = this.pacer.enqueue({
			ticket: request.ticket,
			shard: request.shard,
			enqueuedAtMs: nowMs,
			refusals: request.refusals,
		});
		if (superseded) this.#rounds.answer(superseded.ticket, { ok: false, error: "superseded" }, nowMs);
		if (restored) this.#telemetry.reattached("restart", nowMs);
		// Places kept for a retry count too: they hold memory.
		if (this.pacer.placeCount > this.#config.maxWaitersPerQueue) {
			this.pacer.cancel(request.ticket);
			this.#rounds.answer(request.ticket, { ok: false, error: "overloaded" }, nowMs);
		}
		await this.#rounds.grantDue(nowMs);
		return answer;
	}

	/** On the first call after a start: reads the waiting line back; its places wait, detached, for their requests. */
	#restoreOnce(nowMs: number): void {
		if (this.#restored) return;
		this.#restored = true;
		const saved = this.#storage.places();
		if (saved.length === 0) return;
		this.pacer.restore(saved, nowMs, restoredTurnHoldMs);
		this.#telemetry.restored(saved.length);
	}

	/** Storage that fails: every waiting request gets an error the Worker retries against what is on disk. */
	#reset(error: unknown): never {
		log("queue_reset", { queue: this.#telemetry.queue, error: errorMessage(error) });
		this.ctx.abort("storage failed");
		throw error;
	}
}
