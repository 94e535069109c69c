import { errorMessage, log } from "../log";
import type { GatewayQueue } from "../object/gateway-queue";
import type { AcquireRequest, AcquireResult, Granted, Refused } from "../object/rpc";
import { ApiError } from "./errors";
import { budgetReply } from "./replies";

/** A read of the object answers at once; longer means it is stuck. */
const statusTimeoutMs = 10_000;

export interface WaitOptions {
	/** The Worker's deadline for one call to the object. */
	timeoutMs: number;
	/** The client's request signal: when it aborts, the request is cancelled (its shard's place kept `RETRY_GRACE_MS`). */
	signal: AbortSignal;
	/** Keeps a cancellation running after the response (the execution context's `waitUntil`). */
	waitUntil: (promise: Promise<unknown>) => void;
	/**
	 * The client reads refusals (`Gateway-Queue-Refusals: json`). Any other client
	 * gets a grant or nothing: where it would be refused it is held instead,
	 * since a client that reads no status takes every answer for a grant.
	 */
	refusals: boolean;
}

/** After a failed call (a reset, a deploy): the first retry's delay, doubling to the cap, jittered. */
const resetRetryFirstMs = 100;
export const resetRetryMaxMs = 1_000;
/** A full queue, for a client that reads no refusal: asked again from 1 s, doubling to 5 s, jittered. */
const overloadRetryFirstMs = 1_000;
const overloadRetryMaxMs = 5_000;
/** A request held with no call to the object (superseded, for a client that reads no refusal) wakes this often. */
const holdCheckMs = 60_000;

/**
 * The queue's Durable Object name: the queue name, plus a SHA-256 of the bot
 * token when there is one, so only holders of the token reach that queue and the
 * token itself is never a name.
 */
export async function queueObjectName(queue: string, token: string | undefined): Promise<string> {
	if (token === undefined) return `queue:${queue}`;
	const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
	const hash = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
	return `queue:${queue}:bot:${hash}`;
}

/**
 * Waits in the queue object for a grant, through the object's restarts: a call
 * that fails (a deploy, an eviction, a reset) is made again on a fresh stub with
 * the same ticket, and the request takes its persisted place back; so is a call
 * past the deadline, for a client that reads no refusal. Anything else but a
 * grant is thrown as the `ApiError` the client gets.
 */
export async function waitForGrant(
	stubOf: () => DurableObjectStub<GatewayQueue>,
	request: Omit<AcquireRequest, "ticket">,
	{ timeoutMs, signal, waitUntil, refusals }: WaitOptions,
): Promise<Granted> {
	const ticket = crypto.randomUUID();
	let stub = stubOf();
	const giveUpPlace = () => waitUntil(stub.cancel(ticket).catch(() => false));
	signal.addEventListener("abort", giveUpPlace, { once: true });
	let failures = 0;
	let overloads = 0;
	try {
		while (!signal.aborted) {
			let result: AcquireResult | "timeout";
			try {
				result = await withDeadline<AcquireResult>(stub.acquire({ ...request, ticket }), timeoutMs);
			} catch (error) {
				if (failures === 0) log("queue_call_failed", { queue: request.queue, error: errorMessage(error) });
				stub = stubOf();
				await pause(backoffMs(resetRetryFirstMs, resetRetryMaxMs, failures++), signal);
				continue;
			}
			if (failures > 0) log("queue_call_recovered", { queue: request.queue, attempts: failures + 1 });
			failures = 0;
			if (result === "timeout") {
				if (refusals) {
					giveUpPlace();
					throw new ApiError("queue_timeout", `No grant within WAIT_TIMEOUT_MS (${timeoutMs} ms); retry.`, {
						retryAfterSeconds: 1,
					});
				}
				// Called again with the same ticket: the same request, in the same place.
				stub = stubOf();
				continue;
			}
			if (result.ok) {
				if (!signal.aborted) return result;
				// The client left while the grant was on its way: nobody IDENTIFYs with it.
				waitUntil(stub.handBack(ticket).catch(() => false));
				break;
			}
			if (refusals) throw refusal(result);
			switch (result.error) {
				case "overloaded":
				case "budget_reserve_reached":
					await pause(backoffMs(overloadRetryFirstMs, overloadRetryMaxMs, overloads++), signal);
					continue;
				case "superseded":
					// A newer request holds this shard's place: this one is answered nothing while its client stays.
					// A timer stays pending meanwhile: with nothing pending, workerd ends the request with a 500.
					while (!signal.aborted) await pause(holdCheckMs, signal);
					continue;
				default:
					throw refusal(result);
			}
		}
		throw refusal({ ok: false, error: "cancelled" });
	} finally {
		signal.removeEventListener("abort", giveUpPlace);
	}
}

/** `first` doubled per attempt up to `max`, then jittered down by up to half, so retries spread out. */
function backoffMs(firstMs: number, maxMs: number, attempt: number): number {
	const delayMs = Math.min(maxMs, firstMs * 2 ** Math.min(attempt, 16));
	return delayMs * (0.5 + Math.random() / 2);
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const done = () => {
			clearTimeout(timer);
			signal.removeEventListener("abort", done);
			resolve();
		};
		const timer = setTimeout(done, ms);
		signal.addEventListener("abort", done, { once: true });
		if (signal.aborted) done();
	});
}

/**
 * A read of the queue object (its status, its metrics): answered at once, so an
 * object that was reset, cannot be reached or takes longer is a 503.
 */
export async function readQueue<T>(queue: string, read: () => Promise<T>): Promise<T> {
	try {
		const result = await withDeadline<T>(read(), statusTimeoutMs);
		if (result !== "timeout") return result;
	} catch (error) {
		log("queue_call_failed", { queue, error: errorMessage(error) });
	}
	throw unavailable();
}

function unavailable(): ApiError {
	return new ApiError("queue_unavailable", "The queue was restarted or could not be reached; retry.", {
		retryAfterSeconds: 1,
	});
}

/** The error each refusal of the object is answered with: one case per refusal of `src/core/outcomes.ts`. */
function refusal(result: Refused): ApiError {
	switch (result.error) {
		case "superseded":
			return new ApiError("superseded", "A newer request for this shard took this request's place in line.");
		case "cancelled":
			return new ApiError("cancelled", "The request was cancelled before it was granted.");
		case "unauthorized":
			return new ApiError("invalid_token", "Discord rejected the bot token.");
		case "overloaded":
			return new ApiError("queue_overloaded", "The queue holds as many waiting requests as it may; retry later.", {
				retryAfterSeconds: 5,
			});
		case "budget_reserve_reached":
			return new ApiError(
				"budget_reserve_reached",
				"The bot's daily session starts are down to the reserve that is never granted; retry after the reset.",
				{
					retryAfterSeconds: Math.ceil(result.retryAfterMs / 1000),
					details: { retry_after_ms: result.retryAfterMs, budget: { ...budgetReply(result.budget) } },
				},
			);
	}
}

async function withDeadline<T>(promise: PromiseLike<T>, timeoutMs: number): Promise<T | "timeout"> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	const deadline = new Promise<"timeout">((resolve) => {
		timer = setTimeout(() => resolve("timeout"), timeoutMs);
	});
	try {
		return await Promise.race([promise, deadline]);
	} finally {
		if (timer !== undefined) clearTimeout(timer);
	}
}
