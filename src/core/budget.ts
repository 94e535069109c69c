/**
 * A bot's daily session-start budget, as Discord reports it in `/gateway/bot`
 * and as this queue spends it between two reports. Pure: every function takes
 * the time it acts at.
 *
 * Exhausting the budget makes Discord reset the bot's token, so the queue never
 * grants the last `reserve` starts, and it never believes a report that would
 * hand out starts it already granted.
 */

/** What Discord reported, `resetAfterMs` counted from when the report arrived. */
export interface SessionStartLimit {
	total: number;
	remaining: number;
	resetAfterMs: number;
}

export interface SessionBudget {
	total: number;
	/** Starts left as far as this queue knows: Discord's last figure less the grants since. */
	remaining: number;
	resetAtMs: number;
}

/** A budget as it is shown: in the status, the metrics and a refusal. */
export interface BudgetView {
	total: number;
	/** Starts left as far as the queue knows: Discord's last figure less the grants since. */
	remaining: number;
	/** Starts never granted (`BUDGET_RESERVE`), so a human can still recover the bot. */
	reserve: number;
	resetAtMs: number;
}

/** `BUDGET_RESERVE`: a number of starts, or a percentage of `total`. */
export type ReserveSetting = { starts: number } | { percentOfTotal: number };

/** Discord's budget is per day: no reset is further away than this. */
export const budgetPeriodMs = 86_400_000;
/** Grants younger than this may not have reached Discord as an IDENTIFY yet. */
export const identifyLagMs = 60_000;

/** The starts that are never granted. A percentage rounds up and keeps at least one. */
export function reserveOf(total: number, setting: ReserveSetting): number {
	if ("starts" in setting) return Math.min(setting.starts, total);
	return Math.min(total, Math.max(1, Math.ceil((total * setting.percentOfTotal) / 100)));
}

/** Starts that may still be granted before the reserve. */
export function startsAvailable(budget: SessionBudget, reserve: number): number {
	return Math.max(0, budget.remaining - reserve);
}

export function budgetView(budget: SessionBudget, reserve: number): BudgetView {
	return { total: budget.total, remaining: budget.remaining, reserve, resetAtMs: budget.resetAtMs };
}

/** Low enough that Discord is asked for its figure more often than once a minute. */
export function isLow(budget: SessionBudget, reserve: number): boolean {
	return budget.remaining <= 2 * reserve;
}

export function spend<Budget extends SessionBudget>(budget: Budget, starts: number): Budget {
	return { ...budget, remaining: budget.remaining - starts };
}

/**
 * Merges Discord's report with the grants it may not count yet. Every grant of
 * the last `identifyLagMs` is counted as spent on top of Discord's figure,
 * whether that figure is lower or higher than ours: a grant whose IDENTIFY has
 * not reached Discord is in neither, and which of them Discord has counted is
 * unknown. That errs low by up to a minute of grants, corrected by the next
 * report once they age out; it never hands out a start twice.
 *
 * Odd answers are made safe: `remaining` above `total` counts as `total`, and a
 * reset more than a day away (Discord's budget is daily) as a day away. The
 * budget is never refilled by the clock: past its reset, only Discord's next
 * figure gives starts back.
 */
export function reconcile(reported: SessionStartLimit, nowMs: number, grantsLastMinute: number): SessionBudget {
	const total = Math.max(0, reported.total);
	const discordRemaining = Math.min(Math.max(0, reported.remaining), total);
	return {
		total,
		remaining: Math.max(0, discordRemaining - grantsLastMinute),
		resetAtMs: nowMs + Math.min(Math.max(0, reported.resetAfterMs), budgetPeriodMs),
	};
}
