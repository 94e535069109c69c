import { isLow, type SessionBudget } from "./budget";
import type { GatewayBotResult } from "./gateway-bot";

/** `/gateway/bot` is asked at most this often while it answers. */
export const refreshIntervalMs = 60_000;
/** While the budget is low, Discord's figure is asked for this often. */
export const lowBudgetRefreshIntervalMs = 10_000;
/** Discord counts failed calls against a harsh, undocumented limit: start slow. */
const firstRetryMs = 5_000;

/**
 * When to ask `/gateway/bot` again after `result`. Success and a rejected token
 * wait the full interval; failures back off from 5 s, doubling to the interval;
 * a 429 waits at least its `Retry-After`.
 */
export function nextRefreshAtMs(result: GatewayBotResult, nowMs: number, consecutiveFailures: number): number {
	switch (result.kind) {
		case "ok":
		case "unauthorized":
			return nowMs + refreshIntervalMs;
		case "rate_limited":
			return nowMs + Math.max(result.retryAfterMs, backoffMs(consecutiveFailures));
		case "unavailable":
			return nowMs + backoffMs(consecutiveFailures);
	}
}

function backoffMs(consecutiveFailures: number): number {
	const exponent = Math.max(0, Math.min(consecutiveFailures - 1, 16));
	return Math.min(firstRetryMs * 2 ** exponent, refreshIntervalMs);
}

/** However the budget calls for it, Discord's figure is asked at most this often. */
export const minBudgetRefreshIntervalMs = 5_000;

/**
 * When the budget itself calls for Discord's figure before the regular refresh:
 * at its reset (the only way starts come back), and every few seconds once it
 * runs low; never sooner than `minBudgetRefreshIntervalMs` after the last
 * answer, so an answer with `reset_after: 0` cannot make a loop of calls.
 */
export function budgetRefreshAtMs(budget: SessionBudget, reserve: number, syncedAtMs: number): number {
	const lowRefreshAtMs = isLow(budget, reserve) ? syncedAtMs + lowBudgetRefreshIntervalMs : Number.POSITIVE_INFINITY;
	return Math.max(Math.min(budget.resetAtMs, lowRefreshAtMs), syncedAtMs + minBudgetRefreshIntervalMs);
}
