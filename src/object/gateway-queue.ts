import { DurableObject } from "cloudflare:workers";
import { type Config, configOf } from "../config/config";
import { identifyLagMs, reconcile, reserveOf, type SessionBudget, spend, startsAvailable } from "../core/budget";
import type { GatewayBot, GatewayBotResult } from "../core/gateway-bot";
import {
	countOutcome,
	latenessBoundsSeconds,
	type MetricsSnapshot,
	maxBucketsLabelled,
	newQueueMetrics,
	observe,
	type QueueMetrics,
	upgradeQueueMetrics,
	waitBoundsSeconds,
} from "../core/metrics";
import { type Grant, Pacer, type PlaceChange, type SavedPlace, type Waiter } from "../core/pacing";
import { budgetRefreshAtMs, nextRefreshAtMs } from "../core/refresh";
import {
	type BudgetStatus,
	type ConcurrencySource,
	type QueueStatus,
	queueStatus,
	type RecentGrant,
	recentGrantsKept,
	recentGrantsWindowMs,
} from "../core/status";
import { fetchGatewayBot } from "../discord/api";
import { errorMessage, log } from "../log";

export interface AcquireRequest {
	/** Unique per HTTP request; `cancel(ticket)` gives its place up. */
	ticket: string;
	queue: string;
	shard: number | null;
	/** The bot this queue belongs to; the object's name is derived from its hash. */
	token?: string;
	/**
	 * The client reads refusals (it sent `Gateway-Queue-Refusals: json`): at the
	 * budget's reserve it is refused at once. Any other request is held there:
	 * for a client that reads no status, every answer means IDENTIFY.
	 */
	refusals: boolean;
}

/** A waiting request as the pacer holds it, and as its place is persisted. */
export interface QueueWaiter extends Waiter {
	refusals: boolean;
}

export type AcquireResult =
	| { ok: true; shard: number | null; bucket: number; waitedMs: number; grantedAtMs: number }
	| { ok: false; error: "superseded" | "cancelled" | "unauthorized" | "overloaded" }
	| { ok: false; error: "budget_reserve_reached"; retryAfterMs: number; budget: BudgetStatus };

const gatewayBotKey = "gateway_bot";
const nextRefreshAtKey = "gateway_bot_next_refresh_at_ms";
const tokenRejectedKey = "token_rejected";
const pacingConcurrencyKey = "pacing_concurrency";
const sessionBudgetKey = "session_budget";
const metricsKey = "queue_metrics";

interface StoredBudget extends SessionBudget {
	syncedAtMs: number;
}

/** workerd's timers fire 1-2 ms late: the timer is armed this much early (and again if it fired too early). */
export const timerLeadMs = 2;

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
 * and it takes its place back.
 */
export class GatewayQueue extends DurableObject<Env> {
	/** Replaced in tests to step time by hand; read once per entry point. */
	clock: () => number = Date.now;
	/** Replaced in tests, like `clock`, by a timer fired by hand. Returns what clears the timer. */
	setTimer: (callback: () => Promise<void>, delayMs: number) => () => void = (callback, delayMs) => {
		const timer = setTimeout(callback, delayMs);
		return () => clearTimeout(timer);
	};

	readonly #config: Config;
	/** Read-only outside this class: the waiting lines and last grants. */
	readonly pacer: Pacer<QueueWaiter>;
	/** The answer of each request in the object, by ticket: the same request calling again shares it. */
	readonly #answers = new Map<string, Promise<AcquireResult>>();
	/** How to answer each request in line, and what its log line needs. */
	readonly #settle = new Map<
		string,
		{ resolve: (result: AcquireResult) => void; shard: number | null; arrivedAtMs: number }
	>();
	/** Whether the persisted waiting line has been read back (on the first call, which brings the clock). */
	#restored = false;
	/** Requests waiting for the bot's first `/gateway/bot` answer, before they are in line. */
	readonly #arriving = new Set<string>();
	#alarmAtMs: number | null | undefined;
	#timerAtMs: number | null = null;
	#clearTimer: (() => void) | undefined;
	#queueName = "";

	#source: ConcurrencySource = "unknown";
	#token: string | undefined;
	#tokenRejected = false;
	#refreshing: Promise<void> | undefined;
	#nextRefreshAtMs = 0;
	#refreshFailures = 0;
	/** The bot's daily budget; only bot-bound queues that Discord answered have one. */
	#budget: StoredBudget | undefined;

	/** Counters and histograms, written with the next transaction once changed. */
	readonly #metrics: QueueMetrics;
	#metricsChanged: boolean;
	/** Whether the budget held the line at the last round, and when starts last came back (grants are not late for the wait). */
	#heldByBudget = false;
	#startsBackAtMs = 0;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#config = configOf(env);
		ctx.storage.sql.exec(
			"CREATE TABLE IF NOT EXISTS bucket_grant (bucket INTEGER PRIMARY KEY, granted_at_ms INTEGER NOT NULL)",
		);
		// Recent grants: the status shows the last minutes; the budget counts the last minute's as
		// maybe not counted by Discord yet. `recent_grant` (timestamps only) is what it replaces.
		ctx.storage.sql.exec(
			"CREATE TABLE IF NOT EXISTS grant_history (granted_at_ms INTEGER NOT NULL, bucket INTEGER NOT NULL, shard INTEGER)",
		);
		ctx.storage.transactionSync(() => {
			const legacy = ctx.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'recent_grant'").toArray();
			if (legacy.length === 0) return;
			ctx.storage.sql.exec("INSERT INTO grant_history SELECT granted_at_ms, 0, NULL FROM recent_grant");
			ctx.storage.sql.exec("DROP TABLE recent_grant");
		});
		// The waiting line: a place per shard (or per ticket), its arrival order and its request, without token.
		ctx.storage.sql.exec(
			"CREATE TABLE IF NOT EXISTS waiting_place (place_key TEXT PRIMARY KEY, arrival INTEGER NOT NULL, waiter TEXT NOT NULL)",
		);
		const lastGrants = ctx.storage.sql
			.exec<{ bucket: number; granted_at_ms: number }>("SELECT bucket, granted_at_ms FROM bucket_grant")
			.toArray()
			.map((row) => [row.bucket, row.granted_at_ms] as const);
		// Only bot-bound queues have it; their learnt max_concurrency is the pacer's.
		if (ctx.storage.kv.get<GatewayBot>(gatewayBotKey)) this.#source = "discord";
		this.#nextRefreshAtMs = ctx.storage.kv.get<number>(nextRefreshAtKey) ?? 0;
		this.#tokenRejected = ctx.storage.kv.get<boolean>(tokenRejectedKey) ?? false;
		this.#budget = ctx.storage.kv.get<StoredBudget>(sessionBudgetKey);
		const metrics = ctx.storage.kv.get<QueueMetrics>(metricsKey);
		this.#metrics = metrics ? upgradeQueueMetrics(metrics) : newQueueMetrics(Date.now());
		this.#metricsChanged = metrics === undefined;
		this.pacer = new Pacer<QueueWaiter>({
			maxConcurrency: ctx.storage.kv.get<number>(pacingConcurrencyKey) ?? 1,
			intervalMs: this.#config.identifyIntervalMs,
			lastGrants,
			retryGraceMs: this.#config.retryGraceMs,
		});
	}

	get concurrencySource(): ConcurrencySource {
		return this.#source;
	}

	/**
	 * Resolves when the request's shard may IDENTIFY, or with the reason it may not.
	 * A second call with the same ticket is the same request (the Worker calling
	 * again after its deadline or a restart): it shares the answer or takes the
	 * restored place back.
	 */
	acquire(request: AcquireRequest): Promise<AcquireResult> {
		const arrivedAtMs = this.clock();
		const known = this.#answers.get(request.ticket);
		if (known) {
			this.#metrics.reattached.deadline++;
			this.#metricsChanged = true;
			return known;
		}
		const answer = this.#acquire(request, arrivedAtMs);
		this.#answers.set(request.ticket, answer);
		const forget = () => this.#answers.delete(request.ticket);
		answer.then(forget, forget);
		return answer;
	}

	/** The queue as it stands; reading it takes no slot, arms no alarm and writes nothing. */
	status(queue: string): QueueStatus {
		const nowMs = this.clock();
		this.#restoreOnce(nowMs);
		const known = this.#budgetAt();
		return queueStatus(
			{
				queue,
				pacer: this.pacer,
				concurrencySource: this.#source,
				startedAtMs: this.#metrics.startedAtMs,
				totals: this.#metrics.outcomes,
				recentGrants: this.#recentGrants(nowMs),
				// `null`: a queue without a known bot enforces no budget.
				budget: known ? budgetStatusOf(known) : null,
				heldByBudget: this.#isHeldByBudget(),
				warnings: this.#config.warnings,
			},
			nowMs,
		);
	}

	/**
	 * What a scrape of `GET /_/metrics/{queue}` reads: the counters and the queue
	 * as it stands. Like the status, it takes no slot, arms nothing and writes nothing.
	 */
	metrics(): MetricsSnapshot {
		this.#restoreOnce(this.clock());
		const known = this.#budgetAt();
		const labelled = this.pacer.maxConcurrency <= maxBucketsLabelled;
		return {
			metrics: this.#metrics,
			maxConcurrency: this.pacer.maxConcurrency,
			intervalMs: this.pacer.intervalMs,
			waiting: this.pacer.waitingCount,
			waitingPerBucket: labelled
				? this.pacer.waitingLines(0).map(({ bucket, waiting }) => ({ bucket, waiting }))
				: null,
			placesKept: this.pacer.placeCount - this.pacer.waitingCount,
			budget: known ? { ...budgetStatusOf(known), resetAtMs: known.budget.resetAtMs } : null,
			heldByBudget: this.#isHeldByBudget(),
		};
	}

	/** The grants of the last minutes, oldest first, as the status shows them. */
	#recentGrants(nowMs: number): RecentGrant[] {
		return this.ctx.storage.sql
			.exec<{ granted_at_ms: number; bucket: number; shard: number | null }>(
				"SELECT granted_at_ms, bucket, shard FROM grant_history WHERE granted_at_ms >= ? ORDER BY rowid DESC LIMIT ?",
				nowMs - recentGrantsWindowMs,
				recentGrantsKept,
			)
			.toArray()
			.reverse()
			.map((row) => ({ at: row.granted_at_ms, bucket: row.bucket, shard: row.shard }));
	}

	#isHeldByBudget(): boolean {
		const known = this.#budgetAt();
		return known !== undefined && startsAvailable(known.budget, known.reserve) === 0;
	}

	/** Counts and logs a refusal: one line each. */
	#refuse(shard: number | null, arrivedAtMs: number, result: Extract<AcquireResult, { ok: false }>): AcquireResult {
		countOutcome(this.#metrics, result.error);
		this.#metricsChanged = true;
		log("rejection", {
			queue: this.#queueName,
			bucket: this.pacer.bucketOf(shard),
			shard,
			waited_ms: this.clock() - arrivedAtMs,
			outcome: result.error,
		});
		return result;
	}

	/** Counts and records a grant, in the round that makes it. */
	#recordGrant({ waiter, bucket, grantedAtMs, dueAtMs }: Grant<QueueWaiter>): void {
		countOutcome(this.#metrics, "granted");
		observe(this.#metrics.waitSeconds, waitBoundsSeconds, (grantedAtMs - waiter.enqueuedAtMs) / 1000);
		const latenessMs = grantedAtMs - Math.max(dueAtMs, this.#startsBackAtMs);
		observe(this.#metrics.latenessSeconds, latenessBoundsSeconds, Math.max(0, latenessMs) / 1000);
		this.#metricsChanged = true;
		this.ctx.storage.sql.exec(
			"INSERT INTO grant_history (granted_at_ms, bucket, shard) VALUES (?, ?, ?)",
			grantedAtMs,
			bucket,
			waiter.shard,
		);
	}

	/**
	 * One line per round, not per grant: under `wrangler dev` each line costs
	 * about 5.7 ms (inspector traffic), and a round of 16 grants would write 16.
	 */
	#logGrants(grants: Grant<QueueWaiter>[]): void {
		log("grants", {
			queue: this.#queueName,
			granted: grants.length,
			buckets: grants.map((grant) => grant.bucket),
			shards: grants.map((grant) => grant.waiter.shard),
			waited_ms: grants.map((grant) => grant.grantedAtMs - grant.waiter.enqueuedAtMs),
		});
	}

	async #acquire(request: AcquireRequest, arrivedAtMs: number): Promise<AcquireResult> {
		this.#queueName = request.queue;
		this.#restoreOnce(arrivedAtMs);
		if (request.token === undefined) {
			this.#source = "var";
			this.#setConcurrency(this.#config.maxConcurrency);
		} else {
			// Bounded like the line itself, while Discord's first answer is awaited.
			if (this.#arriving.size >= this.#config.maxWaitersPerQueue) {
				return this.#refuse(request.shard, arrivedAtMs, { ok: false, error: "overloaded" });
			}
			this.#token = request.token;
			this.#arriving.add(request.ticket);
			await this.#syncGatewayBot(arrivedAtMs);
			// Down to the reserve: Discord's figure on its way may free starts.
			if (this.#refreshing && this.#budgetRefusal(this.clock())) await this.#refreshing;
			if (!this.#arriving.delete(request.ticket)) {
				return this.#refuse(request.shard, arrivedAtMs, { ok: false, error: "cancelled" });
			}
			if (this.#tokenRejected) return this.#refuse(request.shard, arrivedAtMs, { ok: false, error: "unauthorized" });
		}

		const nowMs = request.token === undefined ? arrivedAtMs : this.clock();
		const budgetRefusal = this.#budgetRefusal(nowMs);
		if (budgetRefusal && request.refusals) return this.#refuse(request.shard, arrivedAtMs, budgetRefusal);
		// Held from its arrival; when the hold only begins with this round, the round counts it.
		if (budgetRefusal && this.#heldByBudget) this.#countHeld(1);
		const result = new Promise<AcquireResult>((resolve) =>
			this.#settle.set(request.ticket, { resolve, shard: request.shard, arrivedAtMs }),
		);
		const { superseded, restored } = this.pacer.enqueue({
			ticket: request.ticket,
			shard: request.shard,
			enqueuedAtMs: nowMs,
			refusals: request.refusals,
		});
		if (superseded) this.#resolve(superseded.ticket, { ok: false, error: "superseded" });
		if (restored) {
			this.#metrics.reattached.restart++;
			this.#metricsChanged = true;
		}
		// Places kept for a retry count too: they hold memory.
		if (this.pacer.placeCount > this.#config.maxWaitersPerQueue) {
			this.pacer.cancel(request.ticket);
			this.#resolve(request.ticket, { ok: false, error: "overloaded" });
		}
		await this.#grantDue(nowMs);
		return result;
	}

	/**
	 * Answers a waiting request `cancelled` (its client left). Its shard's place is
	 * kept `RETRY_GRACE_MS` for the retry, never granted meanwhile. Returns whether it was still waiting.
	 */
	async cancel(ticket: string): Promise<boolean> {
		const nowMs = this.clock();
		this.#restoreOnce(nowMs);
		if (this.#arriving.delete(ticket)) return true;
		if (!this.pacer.detach(ticket, nowMs)) return false;
		this.#resolve(ticket, { ok: false, error: "cancelled" });
		await this.#grantDue(nowMs);
		return true;
	}

	override async alarm(): Promise<void> {
		this.#alarmAtMs = null;
		const nowMs = this.clock();
		this.#restoreOnce(nowMs);
		await this.#grantDue(nowMs);
	}

	/** Reads the waiting line back after a restart: its places wait, detached, for their requests. */
	#restoreOnce(nowMs: number): void {
		if (this.#restored) return;
		this.#restored = true;
		const saved = this.ctx.storage.sql
			.exec<{ place_key: string; arrival: number; waiter: string }>(
				"SELECT place_key, arrival, waiter FROM waiting_place",
			)
			.toArray()
			.map(
				(row): SavedPlace<QueueWaiter> => ({ key: row.place_key, order: row.arrival, waiter: JSON.parse(row.waiter) }),
			);
		if (saved.length === 0) return;
		this.pacer.restore(saved, nowMs, restoredTurnHoldMs);
		log("queue_restored", { queue: this.#queueName, places: saved.length });
	}

	/**
	 * What every path does, arrival, timer, alarm, cancel and Discord's answer
	 * alike: asks Discord again when due, grants what is due within the budget,
	 * refuses at the reserve only the requests that read refusals, persists it
	 * all in one transaction and arms the next wake-up.
	 */
	async #grantDue(nowMs: number): Promise<void> {
		if (this.#token !== undefined) this.#startRefreshIfDue(nowMs);
		const known = this.#budgetAt();
		const available = known ? startsAvailable(known.budget, known.reserve) : Number.POSITIVE_INFINITY;
		if (available > 0 && this.#heldByBudget) this.#startsBackAtMs = nowMs;
		const grants = this.pacer.takeDue(nowMs, available);
		const exhausted = available - grants.length <= 0;
		const refused = exhausted ? this.pacer.removeWhere((waiter) => waiter.refusals) : [];
		// The requests left are held from now on: count each once per hold.
		if (exhausted && !this.#heldByBudget) this.#countHeld(this.pacer.waitingCount);
		this.#heldByBudget = exhausted && known !== undefined;
		const changes = this.pacer.takeChanges();
		if (grants.length > 0 || changes.length > 0 || this.#metricsChanged) {
			// The grant is on disk before any response leaves (output gate), so a
			// restart still spaces the next grant of the bucket from this one and
			// still counts the starts it spent.
			this.#writeOrReset(() => {
				for (const grant of grants) {
					this.ctx.storage.sql.exec(
						"INSERT OR REPLACE INTO bucket_grant (bucket, granted_at_ms) VALUES (?, ?)",
						grant.bucket,
						grant.grantedAtMs,
					);
					this.#recordGrant(grant);
				}
				if (grants.length > 0) {
					if (known) this.#storeBudget(spend(known.budget, grants.length));
					const keptMs = Math.max(recentGrantsWindowMs, identifyLagMs);
					this.ctx.storage.sql.exec("DELETE FROM grant_history WHERE granted_at_ms <= ?", nowMs - keptMs);
				}
				this.#savePlaces(changes);
				if (this.#metricsChanged) this.ctx.storage.kv.put(metricsKey, this.#metrics);
				this.#metricsChanged = false;
			});
			for (const grant of grants) this.#resolveGrant(grant);
			if (grants.length > 0) this.#logGrants(grants);
		}
		const budgetRefusal = this.#budgetRefusal(nowMs);
		if (budgetRefusal) for (const waiter of refused) this.#resolve(waiter.ticket, budgetRefusal);
		await this.#armAlarm(this.#nextWakeAtMs(exhausted));
	}

	#countHeld(requests: number): void {
		this.#metrics.heldAtReserve += requests;
		this.#metricsChanged ||= requests > 0;
	}

	#savePlaces(changes: PlaceChange<QueueWaiter>[]): void {
		for (const { key, place } of changes) {
			if (place) {
				this.ctx.storage.sql.exec(
					"INSERT OR REPLACE INTO waiting_place (place_key, arrival, waiter) VALUES (?, ?, ?)",
					key,
					place.order,
					JSON.stringify(place.waiter),
				);
			} else this.ctx.storage.sql.exec("DELETE FROM waiting_place WHERE place_key = ?", key);
		}
	}

	/**
	 * The next grant (unless the budget allows none), the next place to drop, and,
	 * while anyone waits, the next time Discord is due: a queue whose shards each
	 * hold one long request re-reads the budget without a new request.
	 */
	#nextWakeAtMs(exhausted: boolean): number | null {
		const grantAtMs = exhausted ? undefined : this.pacer.nextDueAtMs();
		const refreshAtMs =
			this.#token !== undefined && !this.#refreshing && this.pacer.waitingCount > 0
				? this.#refreshDueAtMs()
				: undefined;
		const times = [grantAtMs, this.pacer.nextExpiryAtMs(), refreshAtMs].filter((time) => time !== undefined);
		return times.length > 0 ? Math.min(...times) : null;
	}

	/** The budget and its reserve; none for a queue without a known bot. */
	#budgetAt(): { budget: StoredBudget; reserve: number } | undefined {
		if (!this.#budget) return undefined;
		return { budget: this.#budget, reserve: reserveOf(this.#budget.total, this.#config.budgetReserve) };
	}

	/** The answer to a request that reads refusals while granting would cross the reserve, or `undefined` while it would not. */
	#budgetRefusal(nowMs: number): Extract<AcquireResult, { error: "budget_reserve_reached" }> | undefined {
		const known = this.#budgetAt();
		if (!known || startsAvailable(known.budget, known.reserve) > 0) return undefined;
		return {
			ok: false,
			error: "budget_reserve_reached",
			// Past the reset, starts come back with Discord's next figure, due within seconds.
			retryAfterMs: Math.max(1000, known.budget.resetAtMs - nowMs),
			budget: budgetStatusOf(known),
		};
	}

	#grantsSince(sinceMs: number): number {
		return this.ctx.storage.sql
			.exec<{ count: number }>("SELECT COUNT(*) AS count FROM grant_history WHERE granted_at_ms >= ?", sinceMs)
			.one().count;
	}

	#storeBudget(budget: StoredBudget): void {
		this.#budget = budget;
		this.ctx.storage.kv.put(sessionBudgetKey, budget);
	}

	/**
	 * Storage that fails leaves memory and disk out of step, and waiters could
	 * hang with no alarm: reset the object instead, so every waiting request gets
	 * a 503 and retries against state read back from disk.
	 */
	#writeOrReset<T>(write: () => T): T {
		try {
			return this.ctx.storage.transactionSync(write);
		} catch (error) {
			this.#reset(error);
		}
	}

	#reset(error: unknown): never {
		log("queue_reset", { queue: this.#queueName, error: errorMessage(error) });
		this.ctx.abort("storage failed");
		throw error;
	}

	#resolveGrant({ waiter, bucket, grantedAtMs }: Grant): void {
		this.#resolve(waiter.ticket, {
			ok: true,
			shard: waiter.shard,
			bucket,
			waitedMs: grantedAtMs - waiter.enqueuedAtMs,
			grantedAtMs,
		});
	}

	/** Answers a request in line; a refusal is counted and logged here, a grant with its round. */
	#resolve(ticket: string, result: AcquireResult): void {
		const waiting = this.#settle.get(ticket);
		if (!waiting) return;
		this.#settle.delete(ticket);
		if (!result.ok) this.#refuse(waiting.shard, waiting.arrivedAtMs, result);
		waiting.resolve(result);
	}

	/** Keeps exactly one alarm, at the next wake-up, and none when nothing is due. */
	async #armAlarm(nextAtMs: number | null): Promise<void> {
		this.#armTimer(nextAtMs);
		if (nextAtMs === this.#alarmAtMs) return;
		this.#alarmAtMs = nextAtMs;
		try {
			if (nextAtMs === null) await this.ctx.storage.deleteAlarm();
			else await this.ctx.storage.setAlarm(nextAtMs);
		} catch (error) {
			this.#reset(error);
		}
	}

	/**
	 * Alarms fire a few ms late; a timer beside the alarm grants on time while the
	 * object is alive, and the alarm stays the backstop after an eviction. Whichever
	 * fires first grants; the other finds nothing due (and a timer that fires early
	 * grants nothing and is armed again).
	 */
	#armTimer(nextAtMs: number | null): void {
		if (nextAtMs === this.#timerAtMs) return;
		this.#clearTimer?.();
		this.#clearTimer = undefined;
		this.#timerAtMs = nextAtMs;
		if (nextAtMs === null) return;
		this.#clearTimer = this.setTimer(
			async () => {
				this.#clearTimer = undefined;
				this.#timerAtMs = null;
				// A failure has reset the object and been logged; its alarm retries.
				await this.#grantDue(this.clock()).catch(() => undefined);
			},
			Math.max(0, nextAtMs - this.clock() - timerLeadMs),
		);
	}

	/** Re-buckets the waiting shards when the number of buckets changes, and persists that. */
	#setConcurrency(maxConcurrency: number): boolean {
		if (maxConcurrency === this.pacer.maxConcurrency) return false;
		this.pacer.setMaxConcurrency(maxConcurrency);
		this.#writeOrReset(() => {
			this.ctx.storage.kv.put(pacingConcurrencyKey, maxConcurrency);
			this.ctx.storage.sql.exec("DELETE FROM bucket_grant");
			for (const [bucket, grantedAtMs] of this.pacer.lastGrants()) {
				this.ctx.storage.sql.exec(
					"INSERT INTO bucket_grant (bucket, granted_at_ms) VALUES (?, ?)",
					bucket,
					grantedAtMs,
				);
			}
		});
		return true;
	}

	/**
	 * Learns `max_concurrency` from Discord. Only the very first request of a bot
	 * waits for the answer; later ones use what is known and refresh in the
	 * background at most once a minute.
	 */
	async #syncGatewayBot(nowMs: number): Promise<void> {
		this.#startRefreshIfDue(nowMs);
		if (this.#source === "unknown") await this.#refreshing;
		if (this.#source === "unknown" && !this.#tokenRejected) {
			// Discord did not answer (or, after a restart, is not due to be asked yet).
			// Slower, never unsafe: one bucket until it answers.
			this.#source = "fallback";
			this.#setConcurrency(1);
		}
	}

	/**
	 * Asks Discord when due. `#refreshing` never rejects, and is cleared before the
	 * answer is acted on, so the wake-up armed then includes the next refresh.
	 */
	#startRefreshIfDue(nowMs: number): void {
		if (this.#refreshing || nowMs < this.#refreshDueAtMs()) return;
		const token = this.#token;
		if (token === undefined) return;
		this.#refreshing = fetchGatewayBot(token, { apiUrl: this.#config.discordApiUrl })
			.then(async (result) => {
				this.#refreshing = undefined;
				this.#applyGatewayBot(result, this.clock());
				await this.#grantDue(this.clock());
			})
			// A storage failure has reset the object and been logged.
			.catch(() => undefined)
			.finally(() => {
				this.#refreshing = undefined;
			});
		this.ctx.waitUntil(this.#refreshing);
	}

	/** The regular schedule (or the back-off after a failure), brought forward by the budget's reset or a low budget. */
	#refreshDueAtMs(): number {
		if (!this.#budget || this.#refreshFailures > 0) return this.#nextRefreshAtMs;
		const reserve = reserveOf(this.#budget.total, this.#config.budgetReserve);
		return Math.min(this.#nextRefreshAtMs, budgetRefreshAtMs(this.#budget, reserve, this.#budget.syncedAtMs));
	}

	#applyGatewayBot(result: GatewayBotResult, nowMs: number): void {
		this.#refreshFailures = result.kind === "ok" || result.kind === "unauthorized" ? 0 : this.#refreshFailures + 1;
		this.#metrics.gatewayBotCalls[result.kind]++;
		this.#metricsChanged = true;
		this.#nextRefreshAtMs = nextRefreshAtMs(result, nowMs, this.#refreshFailures);
		log("discord_gateway_bot", {
			queue: this.#queueName,
			outcome: result.kind,
			...(result.kind === "ok" && {
				max_concurrency: result.gatewayBot.maxConcurrency,
				session_starts_total: result.gatewayBot.sessionStartLimit.total,
				session_starts_remaining: result.gatewayBot.sessionStartLimit.remaining,
			}),
			...(result.kind === "unavailable" && { reason: result.reason }),
			...(result.kind === "rate_limited" && { retry_after_ms: result.retryAfterMs }),
			next_refresh_in_ms: this.#nextRefreshAtMs - nowMs,
		});
		// Not one transaction: setting the concurrency writes its own.
		try {
			this.ctx.storage.kv.put(nextRefreshAtKey, this.#nextRefreshAtMs);
			switch (result.kind) {
				case "ok": {
					this.#tokenRejected = false;
					this.ctx.storage.kv.put(gatewayBotKey, result.gatewayBot);
					this.ctx.storage.kv.delete(tokenRejectedKey);
					const budget = reconcile(
						result.gatewayBot.sessionStartLimit,
						nowMs,
						this.#grantsSince(nowMs - identifyLagMs + 1),
					);
					this.#storeBudget({ ...budget, syncedAtMs: nowMs });
					this.#source = "discord";
					this.#setConcurrency(result.gatewayBot.maxConcurrency);
					break;
				}
				case "unauthorized": {
					this.#tokenRejected = true;
					this.#source = "unknown";
					this.#budget = undefined;
					this.ctx.storage.kv.delete(gatewayBotKey);
					this.ctx.storage.kv.delete(sessionBudgetKey);
					this.ctx.storage.kv.put(tokenRejectedKey, true);
					for (const waiter of this.pacer.drain()) this.#resolve(waiter.ticket, { ok: false, error: "unauthorized" });
					this.#savePlaces(this.pacer.takeChanges());
					break;
				}
			}
		} catch (error) {
			this.#reset(error);
		}
	}
}

/** The budget as the status and a refusal show it. */
function budgetStatusOf({ budget, reserve }: { budget: SessionBudget; reserve: number }): BudgetStatus {
	return { total: budget.total, remaining: budget.remaining, reserve, reset_at: budget.resetAtMs };
}
