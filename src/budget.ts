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

/** `BUDGET_RESERVE`: a number of starts, or a percentage of `total`. */
export type ReserveSetting = { starts: number } | { percentOfTotal: number };

/** Discord's budget is per day; when a reset passes unseen, the next one is a day later. */
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

/** Low enough that Discord is asked for its figure more often than once a minute. */
export function isLow(budget: SessionBudget, reserve: number): boolean {
	return budget.remaining <= 2 * reserve;
}

export function spend<Budget extends SessionBudget>(budget: Budget, starts: number): Budget {
	return { ...budget, remaining: budget.remaining - starts };
}

/** The budget at `nowMs`: full again once its reset time has passed. */
export function rollOver<Budget extends SessionBudget>(budget: Budget, nowMs: number): Budget {
	if (nowMs < budget.resetAtMs) return budget;
	const periods = Math.floor((nowMs - budget.resetAtMs) / budgetPeriodMs) + 1;
	return { ...budget, remaining: budget.total, resetAtMs: budget.resetAtMs + periods * budgetPeriodMs };
}

/** Our grants that Discord's report cannot count, or may not count yet. */
export interface GrantsUncounted {
	/** Granted after the report was asked for: certainly not in it. */
	sinceAsked: number;
	/** Granted in the last minute, these included: their IDENTIFY may not have happened yet. */
	lastMinute: number;
}

/**
 * Merges Discord's report with the queue's own count. A lower figure from Discord
 * wins (other tools of the bot spend starts too). A higher one is believed only
 * beyond the grants of the last minute, which may not have identified yet: until
 * Discord's figure drops to ours, those count as spent, so a report never hands
 * out a start twice.
 */
export function reconcile(
	ours: SessionBudget | undefined,
	reported: SessionStartLimit,
	nowMs: number,
	uncounted: GrantsUncounted,
): SessionBudget {
	const discordRemaining = reported.remaining;
	const oursRemaining = ours ? rollOver(ours, nowMs).remaining : Number.NEGATIVE_INFINITY;
	const believable = Math.max(oursRemaining, discordRemaining - uncounted.lastMinute);
	return {
		total: reported.total,
		remaining: Math.max(0, Math.min(discordRemaining - uncounted.sinceAsked, believable)),
		resetAtMs: nowMs + reported.resetAfterMs,
	};
}
