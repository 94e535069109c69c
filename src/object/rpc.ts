/** What the Worker and the queue object say to each other over RPC. */
import type { BudgetView } from "../core/budget";
import type { Refusal } from "../core/outcomes";
import type { Waiter } from "../core/pacing";

export interface AcquireRequest {
	/** Unique per HTTP request; `cancel(ticket)` gives its place up. */
	ticket: string;
	queue: string;
	shard: number | null;
	/** The bot this queue belongs to; the object's name is derived from its hash. */
	token?: string;
	/**
	 * The client reads refusals (it sent `Gateway-Queue-Refusals: json`): at the
	 * budget's reserve it is refused at once. Any other request is held there:
	 * for a client that reads no status, every answer means IDENTIFY.
	 */
	refusals: boolean;
}

export type Granted = { ok: true; shard: number | null; bucket: number; waitedMs: number; grantedAtMs: number };

export type Refused =
	| { ok: false; error: Exclude<Refusal, "budget_reserve_reached"> }
	| { ok: false; error: "budget_reserve_reached"; retryAfterMs: number; budget: BudgetView };

export type AcquireResult = Granted | Refused;

/** A waiting request as the pacer holds it, and as its place is persisted. */
export interface QueueWaiter extends Waiter {
	refusals: boolean;
}
