import { describe, expect, it } from "vitest";
import {
	budgetPeriodMs,
	isLow,
	reconcile,
	reserveOf,
	type SessionBudget,
	spend,
	startsAvailable,
} from "../../src/core/budget";

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

describe("reconcile", () => {
	const report = (remaining: number, resetAfterMs = 3_600_000, total = 1000) => ({ total, remaining, resetAfterMs });

	it("takes Discord's figure, less every grant of the last minute", () => {
		expect(reconcile(report(900), t0, 0)).toEqual({ total: 1000, remaining: 900, resetAtMs: t0 + 3_600_000 });
		expect(reconcile(report(900), t0, 4).remaining).toBe(896);
	});

	it("subtracts the last minute's grants from a lower figure too: Discord may not have counted them yet", () => {
		// We think 900 are left and granted 10 in the last minute; another tool of the bot spent 50.
		// Discord says 860 (it counted 0..10 of ours): 850 is the most that is safe.
		expect(reconcile(report(860), t0, 10).remaining).toBe(850);
	});

	it("believes a higher figure beyond the last minute's grants (a start granted but never used)", () => {
		expect(reconcile(report(905), t0, 0).remaining).toBe(905);
		expect(reconcile(report(920), t0, 10).remaining).toBe(910);
	});

	it("takes the reset time from reset_after, counted from the report", () => {
		expect(reconcile(report(900, 60_000), t0, 0).resetAtMs).toBe(t0 + 60_000);
	});

	it("never goes below zero", () => {
		expect(reconcile(report(1), t0, 5).remaining).toBe(0);
	});

	describe("odd answers", () => {
		it("reset_after 0: the reset is now, and nothing is given back until Discord says so", () => {
			expect(reconcile(report(0, 0), t0, 0)).toEqual({ total: 1000, remaining: 0, resetAtMs: t0 });
		});

		it("reset_after of years: a day at most, Discord's budget being daily", () => {
			expect(reconcile(report(10, 1e15), t0, 0).resetAtMs).toBe(t0 + budgetPeriodMs);
		});

		it("total 0: nothing to grant, whatever remaining says", () => {
			const budget = reconcile(report(5, 3_600_000, 0), t0, 0);
			expect(budget).toMatchObject({ total: 0, remaining: 0 });
			expect(startsAvailable(budget, reserveOf(0, { percentOfTotal: 5 }))).toBe(0);
		});

		it("remaining above total: counted as total", () => {
			expect(reconcile(report(5000), t0, 3).remaining).toBe(997);
		});
	});
});
