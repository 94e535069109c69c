/**
 * How a request for a grant ends: the one list of outcomes, from which the
 * object's answers, the totals of the status and the metrics' labels are typed.
 */
export const outcomes = [
	"granted",
	"superseded",
	"cancelled",
	"overloaded",
	"unauthorized",
	"budget_reserve_reached",
] as const;

export type Outcome = (typeof outcomes)[number];

/** Every outcome but a grant: the reasons a request is answered without one. */
export type Refusal = Exclude<Outcome, "granted">;

/** How many requests ended each way. */
export type OutcomeTotals = Record<Outcome, number>;

export function noOutcomes(): OutcomeTotals {
	return Object.fromEntries(outcomes.map((outcome) => [outcome, 0])) as OutcomeTotals;
}
