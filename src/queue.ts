import { DurableObject } from "cloudflare:workers";
import { identifyLagMs, reconcile, reserveOf, rollOver, type SessionBudget, spend, startsAvailable } from "./budget";
import { type Config, configOf } from "./config";
import { fetchGatewayBot, type GatewayBot } from "./discord";
import { errorMessage, log } from "./log";
import { type Grant, Pacer } from "./pacing";
import { budgetRefreshAtMs, nextRefreshAtMs } from "./refresh";
import { type BudgetStatus, noOutcomes, type Outcome, type QueueStatus, queueStatus, RecentGrants } from "./status";

export interface AcquireRequest {
	/** Unique per HTTP request; `cancel(ticket)` gives its place up. */
	ticket: string;
	queue: string;
	shard: number | null;
	/** The bot this queue belongs to; the object's name is derived from its hash. */
	token?: string;
}

export type AcquireResult =
	| { ok: true; shard: number | null; bucket: number; waitedMs: number; grantedAtMs: number }
	| { ok: false; error: "superseded" | "cancelled" | "unauthorized" | "overloaded" }
	| { ok: false; error: "budget_reserve_reached"; retryAfterMs: number; budget: BudgetStatus };

export type ConcurrencySource = "var" | "discord" | "fallback" | "unknown";

const gatewayBotKey = "gateway_bot";
const nextRefreshAtKey = "gateway_bot_next_refresh_at_ms";
const tokenRejectedKey = "token_rejected";
const pacingConcurrencyKey = "pacing_concurrency";
const sessionBudgetKey = "session_budget";

interface StoredBudget extends SessionBudget {
	syncedAtMs: number;
}

/** workerd's timers fire 1-2 ms late: the timer is armed this much early (and again if it fired too early). */
export const timerLeadMs = 2;

/**
 * One queue: the waiting requests of one bot (or one tokenless queue name), paced
 * by a single alarm and a timer beside it. The last grant of each bucket and the
 * bot's daily budget are persisted; waiting requests live in memory, since their
 * connections do not survive a restart.
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
	readonly pacer: Pacer;
	readonly #settle = new Map<string, (result: AcquireResult) => void>();
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

	readonly #startedAtMs = Date.now();
	readonly #totals = noOutcomes();
	readonly #recentGrants = new RecentGrants();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#config = configOf(env);
		ctx.storage.sql.exec(
			"CREATE TABLE IF NOT EXISTS bucket_grant (bucket INTEGER PRIMARY KEY, granted_at_ms INTEGER NOT NULL)",
		);
		// Grants of the last minute, which Discord's budget figure may not count yet.
		ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS recent_grant (granted_at_ms INTEGER NOT NULL)");
		const lastGrants = ctx.storage.sql
			.exec<{ bucket: number; granted_at_ms: number }>("SELECT bucket, granted_at_ms FROM bucket_grant")
			.toArray()
			.map((row) => [row.bucket, row.granted_at_ms] as const);
		// Only bot-bound queues have it; their learnt max_concurrency is the pacer's.
		if (ctx.storage.kv.get<GatewayBot>(gatewayBotKey)) this.#source = "discord";
		this.#nextRefreshAtMs = ctx.storage.kv.get<number>(nextRefreshAtKey) ?? 0;
		this.#tokenRejected = ctx.storage.kv.get<boolean>(tokenRejectedKey) ?? false;
		this.#budget = ctx.storage.kv.get<StoredBudget>(sessionBudgetKey);
		this.pacer = new Pacer({
			maxConcurrency: ctx.storage.kv.get<number>(pacingConcurrencyKey) ?? 1,
			intervalMs: this.#config.identifyIntervalMs,
			lastGrants,
			retryGraceMs: this.#config.retryGraceMs,
		});
	}

	get concurrencySource(): ConcurrencySource {
		return this.#source;
	}

	/** Resolves when the request's shard may IDENTIFY, or with the reason it may not. */
	async acquire(request: AcquireRequest): Promise<AcquireResult> {
		const arrivedAtMs = this.clock();
		const result = await this.#acquire(request);
		this.#record(request, result, arrivedAtMs);
		return result;
	}

	/** The queue as it stands; reading it takes no slot, arms no alarm and writes nothing. */
	status(queue: string): QueueStatus {
		const nowMs = this.clock();
		const known = this.#budgetAt(nowMs);
		return queueStatus(
			{
				queue,
				pacer: this.pacer,
				concurrencySource: this.#source,
				startedAtMs: this.#startedAtMs,
				totals: this.#totals,
				recentGrants: this.#recentGrants,
				// `null`: a queue without a known bot enforces no budget.
				budget: known ? budgetStatusOf(known) : null,
			},
			nowMs,
		);
	}

	/** Counts and logs how a request ended: one line per grant or refusal. */
	#record(request: AcquireRequest, result: AcquireResult, arrivedAtMs: number): void {
		const outcome: Outcome = result.ok ? "granted" : result.error;
		this.#totals[outcome]++;
		const bucket = result.ok ? result.bucket : this.pacer.bucketOf(request.shard);
		if (result.ok) this.#recentGrants.add({ at: result.grantedAtMs, bucket, shard: result.shard });
		log(result.ok ? "grant" : "rejection", {
			queue: request.queue,
			bucket,
			shard: request.shard,
			waited_ms: result.ok ? result.waitedMs : this.clock() - arrivedAtMs,
			outcome,
		});
	}

	async #acquire(request: AcquireRequest): Promise<AcquireResult> {
		this.#queueName = request.queue;
		if (request.token === undefined) {
			this.#source = "var";
			this.#setConcurrency(this.#config.maxConcurrency);
		} else {
			// Bounded like the line itself, while Discord's first answer is awaited.
			if (this.#arriving.size >= this.#config.maxWaitersPerQueue) return { ok: false, error: "overloaded" };
			this.#token = request.token;
			this.#arriving.add(request.ticket);
			await this.#syncGatewayBot();
			// Down to the reserve: Discord's figure on its way may free starts.
			if (this.#refreshing && this.#budgetRefusal(this.clock())) await this.#refreshing;
			if (!this.#arriving.delete(request.ticket)) return { ok: false, error: "cancelled" };
			if (this.#tokenRejected) return { ok: false, error: "unauthorized" };
		}

		const nowMs = this.clock();
		const budgetRefusal = this.#budgetRefusal(nowMs);
		if (budgetRefusal) return budgetRefusal;
		const result = new Promise<AcquireResult>((resolve) => this.#settle.set(request.ticket, resolve));
		const { superseded } = this.pacer.enqueue({ ticket: request.ticket, shard: request.shard, enqueuedAtMs: nowMs });
		if (superseded) this.#resolve(superseded.ticket, { ok: false, error: "superseded" });
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
		if (this.#arriving.delete(ticket)) return true;
		if (!this.pacer.detach(ticket, this.clock())) return false;
		this.#resolve(ticket, { ok: false, error: "cancelled" });
		await this.#armAlarm();
		return true;
	}

	override async alarm(): Promise<void> {
		this.#alarmAtMs = null;
		if (this.#token !== undefined) this.#startRefreshIfDue();
		await this.#grantDue(this.clock());
	}

	async #grantDue(nowMs: number): Promise<void> {
		const known = this.#budgetAt(nowMs);
		const grants = this.pacer.takeDue(
			nowMs,
			known ? startsAvailable(known.budget, known.reserve) : Number.POSITIVE_INFINITY,
		);
		if (grants.length > 0) {
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
				}
				if (known) {
					this.#storeBudget(spend(known.budget, grants.length));
					for (const grant of grants) {
						this.ctx.storage.sql.exec("INSERT INTO recent_grant (granted_at_ms) VALUES (?)", grant.grantedAtMs);
					}
					this.ctx.storage.sql.exec("DELETE FROM recent_grant WHERE granted_at_ms <= ?", nowMs - identifyLagMs);
				}
			});
			for (const grant of grants) this.#resolveGrant(grant);
		}
		const budgetRefusal = this.#budgetRefusal(nowMs);
		if (budgetRefusal) for (const waiter of this.pacer.drain()) this.#resolve(waiter.ticket, budgetRefusal);
		await this.#armAlarm();
	}

	/** The budget at `nowMs` (full again past its reset) and its reserve; none for a queue without a known bot. */
	#budgetAt(nowMs: number): { budget: StoredBudget; reserve: number } | undefined {
		if (!this.#budget) return undefined;
		const budget = rollOver(this.#budget, nowMs);
		return { budget, reserve: reserveOf(budget.total, this.#config.budgetReserve) };
	}

	/** The answer to every request while granting would cross the reserve, or `undefined` while it would not. */
	#budgetRefusal(nowMs: number): Extract<AcquireResult, { error: "budget_reserve_reached" }> | undefined {
		const known = this.#budgetAt(nowMs);
		if (!known || startsAvailable(known.budget, known.reserve) > 0) return undefined;
		return {
			ok: false,
			error: "budget_reserve_reached",
			retryAfterMs: known.budget.resetAtMs - nowMs,
			budget: budgetStatusOf(known),
		};
	}

	#grantsSince(sinceMs: number): number {
		return this.ctx.storage.sql
			.exec<{ count: number }>("SELECT COUNT(*) AS count FROM recent_grant WHERE granted_at_ms >= ?", sinceMs)
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

	#resolve(ticket: string, result: AcquireResult): void {
		this.#settle.get(ticket)?.(result);
		this.#settle.delete(ticket);
	}

	/** Keeps exactly one alarm, at the next due grant, and none when nobody waits. */
	async #armAlarm(): Promise<void> {
		const nextAtMs = this.pacer.nextDueAtMs() ?? null;
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
	async #syncGatewayBot(): Promise<void> {
		this.#startRefreshIfDue();
		if (this.#source === "unknown") await this.#refreshing;
		if (this.#source === "unknown" && !this.#tokenRejected) {
			// Discord did not answer (or, after a restart, is not due to be asked yet).
			// Slower, never unsafe: one bucket until it answers.
			this.#source = "fallback";
			this.#setConcurrency(1);
		}
	}

	#startRefreshIfDue(): void {
		if (this.#refreshing || this.clock() < this.#refreshDueAtMs()) return;
		this.#refreshing = this.#refreshGatewayBot().finally(() => {
			this.#refreshing = undefined;
		});
		this.ctx.waitUntil(this.#refreshing);
	}

	/** The regular schedule (or the back-off after a failure), brought forward by the budget's reset or a low budget. */
	#refreshDueAtMs(): number {
		if (!this.#budget || this.#refreshFailures > 0) return this.#nextRefreshAtMs;
		// The budget as stored, not rolled over: its reset time passing is what makes Discord due.
		const reserve = reserveOf(this.#budget.total, this.#config.budgetReserve);
		return Math.min(this.#nextRefreshAtMs, budgetRefreshAtMs(this.#budget, reserve, this.#budget.syncedAtMs));
	}

	async #refreshGatewayBot(): Promise<void> {
		const token = this.#token;
		if (token === undefined) return;
		const askedAtMs = this.clock();
		const result = await fetchGatewayBot(token, { apiUrl: this.#config.discordApiUrl });
		const nowMs = this.clock();
		this.#refreshFailures = result.kind === "ok" || result.kind === "unauthorized" ? 0 : this.#refreshFailures + 1;
		this.#nextRefreshAtMs = nextRefreshAtMs(result, nowMs, this.#refreshFailures);
		this.ctx.storage.kv.put(nextRefreshAtKey, this.#nextRefreshAtMs);
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

		switch (result.kind) {
			case "ok": {
				this.#tokenRejected = false;
				this.ctx.storage.kv.put(gatewayBotKey, result.gatewayBot);
				this.ctx.storage.kv.delete(tokenRejectedKey);
				const budget = reconcile(this.#budget, result.gatewayBot.sessionStartLimit, nowMs, {
					sinceAsked: this.#grantsSince(askedAtMs),
					lastMinute: this.#grantsSince(nowMs - identifyLagMs + 1),
				});
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
				this.ctx.storage.sql.exec("DELETE FROM recent_grant");
				this.ctx.storage.kv.put(tokenRejectedKey, true);
				for (const waiter of this.pacer.drain()) this.#resolve(waiter.ticket, { ok: false, error: "unauthorized" });
				break;
			}
		}
		await this.#grantDue(nowMs);
	}
}

/** The budget as the status and a refusal show it. */
function budgetStatusOf({ budget, reserve }: { budget: SessionBudget; reserve: number }): BudgetStatus {
	return { total: budget.total, remaining: budget.remaining, reserve, reset_at: budget.resetAtMs };
}
