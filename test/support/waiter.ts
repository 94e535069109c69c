import type { Waiter } from "../../src/core/pacing";

let nextTicket = 0;

/** A waiting request for the pure pacer, with a ticket of its own. */
export const waiter = (shard: number | null, enqueuedAtMs = 0): Waiter => ({
	ticket: `t${nextTicket++}`,
	shard,
	enqueuedAtMs,
});
