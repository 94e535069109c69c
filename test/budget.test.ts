import { describe, expect, it } from "vitest";
import {
	budgetPeriodMs,
	isLow,
	reconcile,
	reserveOf,
	rollOver,
	type SessionBudget,
	spend,
	startsAvailable,
} from "../src/budget";

const t0 = 1_800_000_000_000;
const budget = (remaining: number, resetAtMs = t0 + 3_600_000): SessionBudget => ({
	total: 1000,
	remaining,
	resetAtMs,
});

describe("reserveOf", () => {
	it("takes a percentage of total, rounded up, and at least one start", () => {
		expect(reserveOf(1000, { percentOfTotal: 5 })).toBe(50);
		expect(reserveOf(150_000, { percentOfTotal: 5 })).toBe(7500);
		expect(reserveOf(10, { percentOfTotal: 5 })).toBe(1);
		expect(reserveOf(1000, { percentOfTotal: 0 })).toBe(1);
		expect(reserveOf(1000, { percentOfTotal: 2.5 })).toBe(25);
	});

	it("takes a number of starts as given, zero included, never more than total", () => {
		expect(reserveOf(1000, { starts: 20 })).toBe(20);
		expect(reserveOf(1000, { starts: 0 })).toBe(0);
		expect(reserveOf(10, { starts: 20 })).toBe(10);
	});
});

describe("spending and the reserve", () => {
	it("spends one start per grant and never offers the reserve", () => {
		expect(spend(budget(100), 3).remaining).toBe(97);
		expect(startsAvailable(budget(53), 50)).toBe(3);
		expect(startsAvailable(budget(50), 50)).toBe(0);
		expect(startsAvailable(budget(12), 50)).toBe(0);
	});

	it("counts as low from twice the reserve down", () => {
		expect(isLow(budget(101), 50)).toBe(false);
		expect(isLow(budget(100), 50)).toBe(true);
	});
});

describe("rollOver", () => {
	it("keeps the budget until its reset time", () => {
		const before = budget(3, t0);
		expect(rollOver(before, t0 - 1)).toBe(before);
	});

	it("is full again from the reset time, with the next reset a day later", () => {
		expect(rollOver(budget(3, t0), t0)).toEqual({ total: 1000, remaining: 1000, resetAtMs: t0 + budgetPeriodMs });
	});

	it("skips whole days that passed unseen", () => {
		expect(rollOver(budget(3, t0), t0 + 2 * budgetPeriodMs + 5).resetAtMs).toBe(t0 + 3 * budgetPeriodMs);
	});
});

describe("reconcile", () => {
	const report = (remaining: number, resetAfterMs = 3_600_000) => ({ total: 1000, remaining, resetAfterMs });
	const recent = (lastMinute: number, sinceAsked = 0) => ({ lastMinute, sinceAsked });

	it("takes Discord's figure the first time, less grants it may not count yet", () => {
		expect(reconcile(undefined, report(900), t0, recent(0))).toEqual({
			total: 1000,
			remaining: 900,
			resetAtMs: t0 + 3_600_000,
		});
		expect(reconcile(undefined, report(900), t0, recent(4)).remaining).toBe(896);
	});

	it("lets a lower figure from Discord win: other tools of the bot spend starts too", () => {
		expect(reconcile(budget(900), report(850), t0, recent(10)).remaining).toBe(850);
	});

	it("counts the last minute's grants as spent while Discord's figure has not caught up", () => {
		// We granted 10 starts since Discord said 910; it still says 910: none identified yet.
		expect(reconcile(budget(900), report(910), t0, recent(10)).remaining).toBe(900);
		// Four of them identified.
		expect(reconcile(budget(900), report(906), t0, recent(10)).remaining).toBe(900);
	});

	it("believes a higher figure beyond the last minute's grants (a start granted but never used)", () => {
		expect(reconcile(budget(900), report(905), t0, recent(0)).remaining).toBe(905);
		expect(reconcile(budget(900), report(920), t0, recent(10)).remaining).toBe(910);
	});

	it("subtracts grants made while the report was on its way, whichever figure wins", () => {
		expect(reconcile(budget(898), report(850), t0, recent(2, 2)).remaining).toBe(848);
		// Discord said 910 before our last 10 grants: 900 is right even though nothing was "recent" before them.
		expect(reconcile(budget(900), report(905), t0, recent(10, 10)).remaining).toBe(895);
	});

	it("takes the reset time from reset_after, counted from the report", () => {
		expect(reconcile(budget(900), report(900, 60_000), t0, recent(0)).resetAtMs).toBe(t0 + 60_000);
	});

	it("after a reset passed, starts from the full budget, and Discord's lower figure still wins", () => {
		const stale = budget(60, t0 - 1);
		expect(reconcile(stale, report(998, budgetPeriodMs), t0, recent(2)).remaining).toBe(998);
		// Discord has not reset yet (our reset time was a little early): its figure wins.
		expect(reconcile(stale, report(55, 2_000), t0, recent(2)).remaining).toBe(55);
	});

	it("never goes below zero", () => {
		expect(reconcile(undefined, report(1), t0, recent(5)).remaining).toBe(0);
	});
});
