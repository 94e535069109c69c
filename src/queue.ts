import { DurableObject } from "cloudflare:workers";
import { type Config, configOf } from "./config";
import { fetchGatewayBot, type GatewayBot } from "./discord";
import { errorMessage, log } from "./log";
import { type Grant, Pacer } from "./pacing";
import { nextRefreshAtMs } from "./refresh";

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
	| { ok: false; error: "superseded" | "cancelled" | "unauthorized" | "overloaded" };

export type ConcurrencySource = "var" | "discord" | "fallback" | "unknown";

const gatewayBotKey = "gateway_bot";
const nextRefreshAtKey = "gateway_bot_next_refresh_at_ms";
const tokenRejectedKey = "token_rejected";
const pacingConcurrencyKey = "pacing_concurrency";
/** workerd's timers fire 1-2 ms late: the timer is armed this much early (and again if it fired too early). */
export const timerLeadMs = 2;

/**
 * One queue: the waiting requests of one bot (or one tokenless queue name), paced
 * by a single alarm. Only the last grant of each bucket is persisted; waiting
 * requests live in memory, since their connections do not survive a restart.
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

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#config = configOf(env);
		ctx.storage.sql.exec(
			"CREATE TABLE IF NOT EXISTS bucket_grant (bucket INTEGER PRIMARY KEY, granted_at_ms INTEGER NOT NULL)",
		);
		const lastGrants = ctx.storage.sql
			.exec<{ bucket: number; granted_at_ms: number }>("SELECT bucket, granted_at_ms FROM bucket_grant")
			.toArray()
			.map((row) => [row.bucket, row.granted_at_ms] as const);
		// Only bot-bound queues have it; their learnt max_concurrency is the pacer's.
		if (ctx.storage.kv.get<GatewayBot>(gatewayBotKey)) this.#source = "discord";
		this.#nextRefreshAtMs = ctx.storage.kv.get<number>(nextRefreshAtKey) ?? 0;
		this.#tokenRejected = ctx.storage.kv.get<boolean>(tokenRejectedKey) ?? false;
		this.pacer = new Pacer({
			maxConcurrency: ctx.storage.kv.get<number>(pacingConcurrencyKey) ?? 1,
			intervalMs: this.#config.identifyIntervalMs,
			lastGrants,
		});
	}

	get concurrencySource(): ConcurrencySource {
		return this.#source;
	}

	/** Resolves when the request's shard may IDENTIFY, or with the reason it may not. */
	async acquire(request: AcquireRequest): Promise<AcquireResult> {
		this.#queueName = request.queue;
		if (request.token === undefined) {
			this.#source = "var";
			this.#setConcurrency(this.#config.maxConcurrency);
		} else {
			this.#token = request.token;
			this.#arriving.add(request.ticket);
			await this.#syncGatewayBot();
			if (!this.#arriving.delete(request.ticket)) return { ok: false, error: "cancelled" };
			if (this.#tokenRejected) return { ok: false, error: "unauthorized" };
		}

		const nowMs = this.clock();
		const result = new Promise<AcquireResult>((resolve) => this.#settle.set(request.ticket, resolve));
		const { superseded } = this.pacer.enqueue({ ticket: request.ticket, shard: request.shard, enqueuedAtMs: nowMs });
		if (superseded) this.#resolve(superseded.ticket, { ok: false, error: "superseded" });
		if (this.pacer.waitingCount > this.#config.maxWaitersPerQueue) {
			this.pacer.cancel(request.ticket);
			this.#resolve(request.ticket, { ok: false, error: "overloaded" });
		}
		await this.#grantDue(nowMs);
		return result;
	}

	/** Gives up a waiting request's place. Returns whether it was still waiting. */
	async cancel(ticket: string): Promise<boolean> {
		if (this.#arriving.delete(ticket)) return true;
		if (!this.pacer.cancel(ticket)) return false;
		this.#resolve(ticket, { ok: false, error: "cancelled" });
		await this.#armAlarm();
		return true;
	}

	override async alarm(): Promise<void> {
		this.#alarmAtMs = null;
		await this.#grantDue(this.clock());
	}

	async #grantDue(nowMs: number): Promise<void> {
		const grants = this.pacer.takeDue(nowMs);
		if (grants.length > 0) {
			// The grant is on disk before any response leaves (output gate), so a
			// restart still spaces the next grant of the bucket from this one.
			this.#writeOrReset(() => {
				for (const grant of grants) {
					this.ctx.storage.sql.exec(
						"INSERT OR REPLACE INTO bucket_grant (bucket, granted_at_ms) VALUES (?, ?)",
						grant.bucket,
						grant.grantedAtMs,
					);
				}
			});
			for (const grant of grants) this.#resolveGrant(grant);
		}
		await this.#armAlarm();
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
		if (!this.#refreshing && this.clock() >= this.#nextRefreshAtMs) {
			this.#refreshing = this.#refreshGatewayBot().finally(() => {
				this.#refreshing = undefined;
			});
			this.ctx.waitUntil(this.#refreshing);
		}
		if (this.#source === "unknown") await this.#refreshing;
		if (this.#source === "unknown" && !this.#tokenRejected) {
			// Discord did not answer (or, after a restart, is not due to be asked yet).
			// Slower, never unsafe: one bucket until it answers.
			this.#source = "fallback";
			this.#setConcurrency(1);
		}
	}

	async #refreshGatewayBot(): Promise<void> {
		const token = this.#token;
		if (token === undefined) return;
		const result = await fetchGatewayBot(token, { apiUrl: this.#config.discordApiUrl });
		const nowMs = this.clock();
		this.#refreshFailures = result.kind === "ok" || result.kind === "unauthorized" ? 0 : this.#refreshFailures + 1;
		this.#nextRefreshAtMs = nextRefreshAtMs(result, nowMs, this.#refreshFailures);
		this.ctx.storage.kv.put(nextRefreshAtKey, this.#nextRefreshAtMs);
		log("discord_gateway_bot", {
			queue: this.#queueName,
			outcome: result.kind,
			...(result.kind === "ok" && { max_concurrency: result.gatewayBot.maxConcurrency }),
			...(result.kind === "unavailable" && { reason: result.reason }),
			...(result.kind === "rate_limited" && { retry_after_ms: result.retryAfterMs }),
			next_refresh_in_ms: this.#nextRefreshAtMs - nowMs,
		});

		switch (result.kind) {
			case "ok": {
				this.#tokenRejected = false;
				this.ctx.storage.kv.put(gatewayBotKey, result.gatewayBot);
				this.ctx.storage.kv.delete(tokenRejectedKey);
				this.#source = "discord";
				this.#setConcurrency(result.gatewayBot.maxConcurrency);
				break;
			}
			case "unauthorized": {
				this.#tokenRejected = true;
				this.#source = "unknown";
				this.ctx.storage.kv.delete(gatewayBotKey);
				this.ctx.storage.kv.put(tokenRejectedKey, true);
				for (const waiter of this.pacer.drain()) this.#resolve(waiter.ticket, { ok: false, error: "unauthorized" });
				break;
			}
		}
		await this.#grantDue(nowMs);
	}
}
