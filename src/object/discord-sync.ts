/**
 * The bot as Discord last described it: its `max_concurrency`, its daily budget
 * and whether its token is accepted; when to ask `/gateway/bot` again, and the
 * call itself. Only bot-bound queues ask; a tokenless queue uses the var.
 */
import {
	type BudgetView,
	budgetView,
	identifyLagMs,
	type ReserveSetting,
	reconcile,
	reserveOf,
	spend,
	startsAvailable,
} from "../core/budget";
import type { GatewayBotResult } from "../core/gateway-bot";
import { budgetRefreshAtMs, nextRefreshAtMs } from "../core/refresh";
import type { ConcurrencySource } from "../core/status";
import { fetchGatewayBot } from "../discord/api";
import type { Refused } from "./rpc";
import type { StoredBudget, StoredSync } from "./storage";

export type BudgetRefusal = Extract<Refused, { error: "budget_reserve_reached" }>;

export interface SyncOptions {
	discordApiUrl: string;
	budgetReserve: ReserveSetting;
	/** Grants made since a time: the budget counts the last minute's as not yet counted by Discord. */
	grantsSince: (sinceMs: number) => number;
	/** Keeps a call running without a request (the state's `waitUntil`). */
	waitUntil: (promise: Promise<unknown>) => void;
}

/** The budget of a bot Discord described, and its reserve. */
export interface KnownBudget {
	budget: StoredBudget;
	reserve: number;
}

export class DiscordSync {
	readonly #options: SyncOptions;
	#state: StoredSync;
	#source: ConcurrencySource;
	#token: string | undefined;
	#refreshing: Promise<void> | undefined;
	#refreshFailures = 0;

	constructor(stored: StoredSync, options: SyncOptions) {
		this.#state = stored;
		this.#options = options;
		// A learnt max_concurrency is the pacer's until Discord answers again.
		this.#source = stored.gatewayBot ? "discord" : "unknown";
	}

	get source(): ConcurrencySource {
		return this.#source;
	}

	/** What is persisted of it. */
	get stored(): StoredSync {
		return this.#state;
	}

	get tokenRejected(): boolean {
		return this.#state.tokenRejected;
	}

	/** Discord's answer on its way, if a call is under way; it never rejects. */
	get refreshing(): Promise<void> | undefined {
		return this.#refreshing;
	}

	/** A queue without a bot token paces by the var. */
	useVar(): void {
		this.#source = "var";
	}

	bind(token: string): void {
		this.#token = token;
	}

	/**
	 * After the first call for a bot: when Discord did not answer (or, after a
	 * restart, is not due to be asked yet), one bucket until it answers. Slower,
	 * never unsafe. Returns whether the queue falls back now.
	 */
	fallBackIfUnknown(): boolean {
		if (this.#source !== "unknown" || this.#state.tokenRejected) return false;
		this.#source = "fallback";
		return true;
	}

	/**
	 * Asks Discord when due; `onAnswer` acts on the answer. `refreshing` is cleared
	 * before it runs, so the wake-up armed then includes the next refresh.
	 */
	startIfDue(nowMs: number, onAnswer: (result: GatewayBotResult) => Promise<void>): void {
		const token = this.#token;
		if (token === undefined || this.#refreshing || nowMs < this.#dueAtMs()) return;
		this.#refreshing = fetchGatewayBot(token, { apiUrl: this.#options.discordApiUrl })
			.then((result) => {
				this.#refreshing = undefined;
				return onAnswer(result);
			})
			// A storage failure has reset the object and been logged.
			.catch(() => undefined)
			.finally(() => {
				this.#refreshing = undefined;
			});
		this.#options.waitUntil(this.#refreshing);
	}

	/** While requests wait, when Discord is due next; `undefined` for a queue that asks nothing now. */
	nextCallAtMs(): number | undefined {
		return this.#token !== undefined && !this.#refreshing ? this.#dueAtMs() : undefined;
	}

	/** The regular schedule (or the back-off after a failure), brought forward by the budget's reset or a low budget. */
	#dueAtMs(): number {
		const { budget, nextRefreshAtMs } = this.#state;
		if (!budget || this.#refreshFailures > 0) return nextRefreshAtMs;
		const reserve = reserveOf(budget.total, this.#options.budgetReserve);
		return Math.min(nextRefreshAtMs, budgetRefreshAtMs(budget, reserve, budget.syncedAtMs));
	}

	/** Takes Discord's answer in; the caller persists `stored`. */
	answered(result: GatewayBotResult, nowMs: number): void {
		this.#refreshFailures = result.kind === "ok" || result.kind === "unauthorized" ? 0 : this.#refreshFailures + 1;
		const nextRefresh = nextRefreshAtMs(result, nowMs, this.#refreshFailures);
		switch (result.kind) {
			case "ok": {
				const reported = result.gatewayBot.sessionStartLimit;
				const budget = reconcile(reported, nowMs, this.#options.grantsSince(nowMs - identifyLagMs + 1));
				this.#state = {
					gatewayBot: result.gatewayBot,
					nextRefreshAtMs: nextRefresh,
					tokenRejected: false,
					budget: { ...budget, syncedAtMs: nowMs },
				};
				this.#source = "discord";
				break;
			}
			case "unauthorized":
				this.#state = { gatewayBot: undefined, nextRefreshAtMs: nextRefresh, tokenRejected: true, budget: undefined };
				this.#source = "unknown";
				break;
			default:
				this.#state = { ...this.#state, nextRefreshAtMs: nextRefresh };
		}
	}

	/** The budget and its reserve; none for a queue without a known bot. */
	known(): KnownBudget | undefined {
		const { budget } = this.#state;
		return budget && { budget, reserve: reserveOf(budget.total, this.#options.budgetReserve) };
	}

	/** Starts that may be granted before the reserve; unbounded for a queue without a known bot. */
	startsAvailable(): number {
		const known = this.known();
		return known ? startsAvailable(known.budget, known.reserve) : Number.POSITIVE_INFINITY;
	}

	/** The answer to a request that reads refusals while granting would cross the reserve; `undefined` while it would not. */
	refusal(nowMs: number): BudgetRefusal | undefined {
		const known = this.known();
		if (!known || startsAvailable(known.budget, known.reserve) > 0) return undefined;
		return {
			ok: false,
			error: "budget_reserve_reached",
			// Past the reset, starts come back with Discord's next figure, due within seconds.
			retryAfterMs: Math.max(1000, known.budget.resetAtMs - nowMs),
			budget: budgetView(known.budget, known.reserve),
		};
	}

	/** Down to the reserve: waiting requests are held until starts come back. */
	atReserve(): boolean {
		return this.startsAvailable() === 0;
	}

	view(): BudgetView | null {
		const known = this.known();
		return known ? budgetView(known.budget, known.reserve) : null;
	}

	/** Spends starts of a round (gives one back, at -1); returns the budget to persist with it. */
	spend(starts: number): StoredBudget | undefined {
		const { budget } = this.#state;
		if (!budget || starts === 0) return budget;
		const spent = spend(budget, starts);
		this.#state = { ...this.#state, budget: spent };
		return spent;
	}
}
