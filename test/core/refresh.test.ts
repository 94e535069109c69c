import { describe, expect, it } from "vitest";
import {
	budgetRefreshAtMs,
	lowBudgetRefreshIntervalMs,
	minBudgetRefreshIntervalMs,
	nextRefreshAtMs,
	refreshIntervalMs,
} from "../../src/core/refresh";

const gatewayBot = { maxConcurrency: 1, sessionStartLimit: { total: 1000, remaining: 999, resetAfterMs: 1 } };

describe("nextRefreshAtMs", () => {
	it("asks again after a minute when Discord answered", () => {
		expect(nextRefreshAtMs({ kind: "ok", gatewayBot }, 100, 0)).toBe(100 + refreshIntervalMs);
		expect(nextRefreshAtMs({ kind: "unauthorized" }, 100, 0)).toBe(100 + refreshIntervalMs);
	});

	it("backs off from 5 s, doubling up to a minute, while Discord is unavailable", () => {
		const unavailable = { kind: "unavailable", reason: "HTTP 502" } as const;
		const delays = [1, 2, 3, 4, 5, 30].map((failures) => nextRefreshAtMs(unavailable, 0, failures));
		expect(delays).toEqual([5000, 10_000, 20_000, 40_000, 60_000, 60_000]);
	});

	it("waits at least Discord's Retry-After on a 429", () => {
		expect(nextRefreshAtMs({ kind: "rate_limited", retryAfterMs: 42_000 }, 0, 1)).toBe(42_000);
		expect(nextRefreshAtMs({ kind: "rate_limited", retryAfterMs: 10 }, 0, 3)).toBe(20_000);
	});
});

describe("budgetRefreshAtMs", () => {
	const budget = { total: 1000, remaining: 500, resetAtMs: 10_000_000 };

	it("asks at the reset time while the budget is not low", () => {
		expect(budgetRefreshAtMs(budget, 50, 1_000)).toBe(10_000_000);
	});

	it("asks every few seconds once the budget is low", () => {
		expect(budgetRefreshAtMs({ ...budget, remaining: 100 }, 50, 1_000)).toBe(1_000 + lowBudgetRefreshIntervalMs);
		expect(budgetRefreshAtMs({ ...budget, remaining: 100, resetAtMs: 3_000 }, 50, 1_000)).toBe(
			1_000 + minBudgetRefreshIntervalMs,
		);
	});

	it("asks at the reset, but never sooner than a few seconds after the last answer (reset_after: 0)", () => {
		expect(budgetRefreshAtMs({ ...budget, resetAtMs: 1_000 }, 50, 1_000)).toBe(1_000 + minBudgetRefreshIntervalMs);
		expect(budgetRefreshAtMs({ ...budget, resetAtMs: 20_000 }, 50, 1_000)).toBe(20_000);
	});
});
