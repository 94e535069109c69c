import { ApiError } from "./errors";
import { errorMessage, log } from "./log";
import type { AcquireRequest, AcquireResult, GatewayQueue } from "./queue";
import type { QueueStatus } from "./status";

type Granted = Extract<AcquireResult, { ok: true }>;

/** A status read answers at once; longer means the object is stuck. */
const statusTimeoutMs = 10_000;

export interface WaitOptions {
	/** The Worker's deadline for the object's answer. */
	timeoutMs: number;
	/** The client's request signal: when it aborts, the request is cancelled (its shard's place kept `RETRY_GRACE_MS`). */
	signal: AbortSignal;
	/** Keeps a cancellation running after the response (the execution context's `waitUntil`). */
	waitUntil: (promise: Promise<unknown>) => void;
}

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
 * Waits in the queue object for a grant. Anything but a grant is thrown as the
 * `ApiError` the client gets: a reset or unreachable object, the deadline, and
 * the object's own refusals.
 */
export async function waitForGrant(
	stub: DurableObjectStub<GatewayQueue>,
	request: Omit<AcquireRequest, "ticket">,
	{ timeoutMs, signal, waitUntil }: WaitOptions,
): Promise<Granted> {
	if (signal.aborted) throw refusal({ ok: false, error: "cancelled" });
	const ticket = crypto.randomUUID();
	const giveUpPlace = () => waitUntil(stub.cancel(ticket).catch(() => false));
	signal.addEventListener("abort", giveUpPlace, { once: true });
	let result: AcquireResult | "timeout";
	try {
		result = await withDeadline<AcquireResult>(stub.acquire({ ...request, ticket }), timeoutMs);
	} catch (error) {
		log("queue_call_failed", { queue: request.queue, error: errorMessage(error) });
		throw unavailable();
	} finally {
		signal.removeEventListener("abort", giveUpPlace);
	}
	if (result === "timeout") {
		giveUpPlace();
		throw new ApiError("queue_timeout", `No grant within WAIT_TIMEOUT_MS (${timeoutMs} ms); retry.`, {
			retryAfterSeconds: 1,
		});
	}
	if (!result.ok) throw refusal(result);
	return result;
}

/** The queue's status; an object that was reset or cannot be reached is a 503, as for a grant. */
export async function readStatus(stub: DurableObjectStub<GatewayQueue>, queue: string): Promise<QueueStatus> {
	try {
		const status = await withDeadline<QueueStatus>(stub.status(queue), statusTimeoutMs);
		if (status !== "timeout") return status;
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

function refusal(result: Extract<AcquireResult, { ok: false }>): ApiError {
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
		case "budget_reserve_reached": {
			return new ApiError(
				"budget_reserve_reached",
				"The bot's daily session starts are down to the reserve that is never granted; retry after the reset.",
				{
					retryAfterSeconds: Math.ceil(result.retryAfterMs / 1000),
					details: {
						retry_after_ms: result.retryAfterMs,
						budget: { ...result.budget },
					},
				},
			);
		}
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
