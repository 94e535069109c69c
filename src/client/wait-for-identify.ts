/**
 * Asks a gateway-queue deployment whether a shard may IDENTIFY, and waits until
 * it may. Only `fetch`, `AbortController` and timers: runs on Node.js, Deno, Bun,
 * browsers and Workers alike.
 */

export interface WaitForIdentifyOptions {
	/** The queue's URL, e.g. `https://gateway-queue.example.workers.dev/mybot`; `?shard=N` is added. */
	url: string | URL;
	/** The bot token: the queue becomes this bot's own and reads its `max_concurrency` from Discord. */
	token?: string;
	/** The deployment's `QUEUE_SECRET`, when it has one: sent as `Authorization: Bearer`, the token then in `X-Bot-Token`. */
	secret?: string;
	/** Gives up: the HTTP request is aborted and the promise rejects with the signal's reason. */
	signal?: AbortSignal;
	/**
	 * How long one request may stay unanswered (default 60 s). Then a new request is sent while the
	 * old one stays open, so the queue hands the old one's place in line to the new one (it answers
	 * the old one `409`); a request that really hangs is dropped one period later.
	 */
	attemptTimeoutMs?: number;
	/** First backoff after a failed request (default 1 s); it doubles per consecutive failure, with jitter. */
	backoffBaseMs?: number;
	/** Longest backoff (default 30 s). */
	backoffMaxMs?: number;
	/**
	 * The longest `Retry-After` of a `429` that is waited out (default 60 s). A longer one (the queue's
	 * daily budget reserve can mean hours) rejects with an `IdentifyQueueError` carrying `retryAfterMs`,
	 * so the caller decides instead of a shard sleeping silently for hours.
	 */
	maxRetryAfterMs?: number;
	/** For tests and custom transports. */
	fetch?: typeof fetch;
	/** Waits `ms` or until `signal` aborts, whichever is first (resolving either way). For tests. */
	delay?: (ms: number, signal: AbortSignal) => Promise<void>;
	/** A number in [0, 1) for the backoff jitter. For tests. */
	random?: () => number;
	/** Told about each retry, e.g. to log it. */
	onRetry?: (retry: RetryInfo) => void;
}

export interface RetryInfo {
	shardId: number;
	/** Why: an HTTP status with the queue's error code, a network error, or `timeout`. */
	reason: string;
	/** How long the client waits before the next request. */
	delayMs: number;
	/** Failed requests in a row. */
	failures: number;
}

/** The queue's answer when the shard may IDENTIFY. Fields are absent when a queue (like twilight's) does not send them. */
export interface IdentifyGrant {
	shard?: number;
	bucket?: number;
	waitedMs?: number;
	grantedAtMs?: number;
}

/** A refusal the client does not retry: bad token, bad shard, superseded, a long `429`, a misconfigured queue. */
export class IdentifyQueueError extends Error {
	override name = "IdentifyQueueError";
	/** The HTTP status. */
	readonly status: number;
	/** The queue's error code (`invalid_token`, `superseded`, ...), or `http_<status>` when the body has none. */
	readonly code: string;
	/** For `429`: how long the queue asked to wait. */
	readonly retryAfterMs: number | undefined;

	constructor(status: number, code: string, message: string, retryAfterMs?: number) {
		super(message);
		this.status = status;
		this.code = code;
		this.retryAfterMs = retryAfterMs;
	}
}

export const defaults = {
	attemptTimeoutMs: 60_000,
	backoffBaseMs: 1_000,
	backoffMaxMs: 30_000,
	maxRetryAfterMs: 60_000,
};
type Settings = typeof defaults;

type Outcome =
	| { kind: "granted"; grant: IdentifyGrant }
	| { kind: "retry"; reason: string; retryAfterMs?: number }
	| { kind: "refused"; error: IdentifyQueueError };
type Granted = Extract<Outcome, { kind: "granted" }>;

interface Attempt {
	controller: AbortController;
	outcome: Promise<Outcome>;
}

/**
 * Resolves when shard `shardId` may IDENTIFY. Retries `5xx`, network errors and
 * unanswered requests with jittered exponential backoff (at least half of
 * `backoffBaseMs`, so never a tight loop), waits out a short `429` `Retry-After`,
 * and rejects with an `IdentifyQueueError` on any other refusal.
 */
export async function waitForIdentify(shardId: number, options: WaitForIdentifyOptions): Promise<IdentifyGrant> {
	if (!Number.isSafeInteger(shardId) || shardId < 0)
		throw new RangeError(`shardId must be a whole number ≥ 0, not ${shardId}`);
	const settings = settingsOf(options);
	const { signal, delay = abortableDelay, random = Math.random } = options;
	signal?.throwIfAborted();
	const request = requestOf(shardId, options, settings);
	// Ends every wait when the caller gives up; our own, so the caller's signal is only listened to.
	const stop = new AbortController();
	const onAbort = () => stop.abort(signal?.reason);
	signal?.addEventListener("abort", onAbort, { once: true });
	const inFlight = new Set<AbortController>();
	const start = (): Attempt => {
		const attempt = startAttempt(request, options.fetch ?? fetch);
		inFlight.add(attempt.controller);
		void attempt.outcome.then(() => inFlight.delete(attempt.controller));
		return attempt;
	};
	/** The first of `promises`, or `"elapsed"` after `ms`; rejects with the abort reason once stopped. */
	const firstOf = async <T>(ms: number, promises: Promise<T>[]): Promise<T | "elapsed"> => {
		const timer = new AbortController();
		const elapsed = delay(ms, timer.signal).then(() => "elapsed" as const);
		try {
			const first = await untilAborted<T | "elapsed">(stop.signal, [elapsed, ...promises]);
			stop.signal.throwIfAborted();
			return first;
		} finally {
			timer.abort();
		}
	};
	// A timed-out attempt left open until the queue answers it `409` (or grants it, if the new one came too late).
	let previous: Attempt | undefined;
	let failures = 0;
	try {
		for (let current = start(); ; ) {
			const event = await firstOf(settings.attemptTimeoutMs, [current.outcome, grantOf(previous)]);
			if (event === "elapsed") {
				previous?.controller.abort();
				previous = current;
				current = start();
				options.onRetry?.({ shardId, reason: "timeout", delayMs: 0, failures });
				continue;
			}
			if (event.kind === "granted") return event.grant;
			if (event.kind === "refused") throw event.error;
			failures += 1;
			const delayMs = Math.max(event.retryAfterMs ?? 0, backoffMs(failures, settings, random));
			options.onRetry?.({ shardId, reason: event.reason, delayMs, failures });
			const granted = await firstOf(delayMs, [grantOf(previous)]);
			if (granted !== "elapsed") return granted.grant;
			current = start();
		}
	} finally {
		signal?.removeEventListener("abort", onAbort);
		for (const controller of inFlight) controller.abort();
	}
}

function settingsOf(options: WaitForIdentifyOptions): Settings {
	const settings = {
		attemptTimeoutMs: options.attemptTimeoutMs ?? defaults.attemptTimeoutMs,
		backoffBaseMs: options.backoffBaseMs ?? defaults.backoffBaseMs,
		backoffMaxMs: options.backoffMaxMs ?? defaults.backoffMaxMs,
		maxRetryAfterMs: options.maxRetryAfterMs ?? defaults.maxRetryAfterMs,
	};
	for (const [name, value] of Object.entries(settings)) {
		// Zero would make a tight loop of requests.
		if (!(value > 0 && value <= 2 ** 31 - 1))
			throw new RangeError(`${name} must be a positive number of ms, not ${value}`);
	}
	return settings;
}

interface PreparedRequest {
	url: string;
	headers: Headers;
	maxRetryAfterMs: number;
}

function requestOf(shardId: number, options: WaitForIdentifyOptions, settings: Settings): PreparedRequest {
	const url = new URL(options.url);
	url.searchParams.set("shard", String(shardId));
	const headers = new Headers();
	if (options.secret !== undefined) {
		headers.set("authorization", `Bearer ${options.secret}`);
		if (options.token !== undefined) headers.set("x-bot-token", options.token);
	} else if (options.token !== undefined) {
		headers.set("authorization", `Bot ${options.token}`);
	}
	return { url: url.href, headers, maxRetryAfterMs: settings.maxRetryAfterMs };
}

function startAttempt(request: PreparedRequest, fetchImpl: typeof fetch): Attempt {
	const controller = new AbortController();
	const outcome = fetchImpl(request.url, { headers: request.headers, signal: controller.signal }).then(
		(response) => outcomeOf(response, request.maxRetryAfterMs),
		(error: unknown): Outcome => ({ kind: "retry", reason: error instanceof Error ? error.name : "fetch failed" }),
	);
	return { controller, outcome };
}

async function outcomeOf(response: Response, maxRetryAfterMs: number): Promise<Outcome> {
	const body = await response.json().catch(() => undefined);
	if (response.ok) return { kind: "granted", grant: grantFrom(body) };
	const { code = `http_${response.status}`, message = response.statusText, retryAfterMs } = errorFrom(body);
	const waitMs = retryAfterMs ?? retryAfterHeaderMs(response.headers.get("retry-after"));
	const reason = `HTTP ${response.status} ${code}`;
	if (response.status === 429) {
		const refusal = new IdentifyQueueError(429, code, `identify queue: ${reason}: ${message}`, waitMs);
		if (waitMs === undefined || waitMs > maxRetryAfterMs) return { kind: "refused", error: refusal };
		return { kind: "retry", reason, retryAfterMs: waitMs };
	}
	// 5xx is the queue restarting, overloaded or timed out, or a proxy in between; a misconfigured queue stays so.
	if (response.status >= 500 && code !== "misconfigured")
		return waitMs === undefined ? { kind: "retry", reason } : { kind: "retry", reason, retryAfterMs: waitMs };
	return {
		kind: "refused",
		error: new IdentifyQueueError(response.status, code, `identify queue: ${reason}: ${message}`),
	};
}

function grantFrom(body: unknown): IdentifyGrant {
	const grant: IdentifyGrant = {};
	if (!isRecord(body)) return grant;
	if (typeof body.shard === "number") grant.shard = body.shard;
	if (typeof body.bucket === "number") grant.bucket = body.bucket;
	if (typeof body.waited_ms === "number") grant.waitedMs = body.waited_ms;
	if (typeof body.granted_at === "number") grant.grantedAtMs = body.granted_at;
	return grant;
}

/** The queue's error body: `{error: code, message, retry_after_ms?}`. */
function errorFrom(body: unknown): { code?: string; message?: string; retryAfterMs?: number } {
	if (!isRecord(body)) return {};
	const result: { code?: string; message?: string; retryAfterMs?: number } = {};
	if (typeof body.error === "string") result.code = body.error;
	if (typeof body.message === "string") result.message = body.message;
	if (typeof body.retry_after_ms === "number" && body.retry_after_ms >= 0) result.retryAfterMs = body.retry_after_ms;
	return result;
}

/** `Retry-After` in seconds (the queue never sends the HTTP-date form). */
function retryAfterHeaderMs(value: string | null): number | undefined {
	const seconds = value === null ? Number.NaN : Number(value);
	return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** Exponential, capped, with "equal jitter": between half and all of the step, so never zero. */
function backoffMs(failures: number, settings: Settings, random: () => number): number {
	const stepMs = Math.min(settings.backoffMaxMs, settings.backoffBaseMs * 2 ** (failures - 1));
	return Math.round(stepMs / 2 + (random() * stepMs) / 2);
}

/** Resolves only with a grant of `attempt`: any other outcome of a superseded attempt is of no interest. */
function grantOf(attempt: Attempt | undefined): Promise<Granted> {
	return new Promise((resolve) => {
		void attempt?.outcome.then((outcome) => {
			if (outcome.kind === "granted") resolve(outcome);
		});
	});
}

/** The first of `promises`, or a rejection with the abort reason when `signal` aborts first. */
function untilAborted<T>(signal: AbortSignal, promises: Promise<T>[]): Promise<T> {
	if (signal.aborted) return Promise.reject(signal.reason);
	return new Promise<T>((resolve, reject) => {
		const onAbort = () => reject(signal.reason);
		signal.addEventListener("abort", onAbort, { once: true });
		Promise.race(promises)
			.then(resolve, reject)
			.finally(() => signal.removeEventListener("abort", onAbort));
	});
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const done = () => {
			clearTimeout(timer);
			signal.removeEventListener("abort", done);
			resolve();
		};
		const timer = setTimeout(done, ms);
		signal.addEventListener("abort", done, { once: true });
	});
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null;
}
