/**
 * Asks a gateway-queue deployment whether a shard may IDENTIFY, and waits until
 * it may. Only `fetch`, `AbortController` and timers: runs on Node.js, Deno, Bun,
 * browsers and Workers alike.
 */
import { abortableDelay, type QueueClientOptions, type Settings, settingsOf } from "./options.js";

/** The reference server's grant, exactly: a `200` whose JSON `message` is anything else is not a grant. */
export const grantMessage = "You're free to connect now! :)";

/** The queue's answer when the shard may IDENTIFY. Fields are absent when a queue (like twilight's) does not send them. */
export interface IdentifyGrant {
	shard?: number;
	bucket?: number;
	waitedMs?: number;
	grantedAtMs?: number;
}

/**
 * A refusal the client does not retry: bad token, bad shard, superseded, a long `429`, a misconfigured
 * queue, an answer that is not a grant (`not_a_grant`), a redirect while credentials are sent (`redirect`).
 */
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

/** What `waitUntilGranted` tells about a failed wait before it asks again. */
export interface RetryAfterErrorInfo {
	shardId: number;
	/** How long it waits before asking again. */
	retryInMs: number;
}

export type OnWaitError = (error: unknown, info: RetryAfterErrorInfo) => void;

export interface WaitForIdentifyOptions extends QueueClientOptions {
	/** Gives up: the HTTP request is aborted and the promise rejects with the signal's reason. */
	signal?: AbortSignal;
}

type Outcome =
	| { kind: "granted"; grant: IdentifyGrant }
	| { kind: "retry"; reason: string; retryAfterMs?: number }
	| { kind: "refused"; error: IdentifyQueueError };
type Granted = Extract<Outcome, { kind: "granted" }>;

interface Attempt {
	controller: AbortController;
	outcome: Promise<Outcome>;
}

/** A `Retry-After` is honoured, then spread by up to half of it, at most this much, so shards told alike do not ask alike. */
const maxRetryAfterJitterMs = 5_000;
/** After a refusal with a `Retry-After` (the budget reserve: hours), `waitUntilGranted` asks again at the latest this soon. */
const longestRefusalWaitMs = 3_600_000;

/**
 * A client of one queue: `waitForIdentify` for callers that handle refusals, `waitUntilGranted` for
 * libraries whose identify hook must never fail. Options are checked here, once.
 */
export class GatewayQueueClient {
	readonly #settings: Settings;
	#lastWarningAtMs = Number.NEGATIVE_INFINITY;
	#heldBackWarnings = 0;

	constructor(options: QueueClientOptions) {
		this.#settings = settingsOf(options);
	}

	/**
	 * Resolves when shard `shardId` may IDENTIFY. Retries `5xx`, network errors and unanswered requests
	 * with jittered exponential backoff (at least half of `backoffBaseMs`, so never a tight loop), waits
	 * out a short `429` `Retry-After`, and rejects with an `IdentifyQueueError` on any other refusal.
	 */
	async waitForIdentify(shardId: number, signal?: AbortSignal): Promise<IdentifyGrant> {
		if (!(Number.isSafeInteger(shardId) && shardId >= 0 && shardId < 2 ** 32))
			throw new RangeError(`shardId must be a whole number in [0, 2^32), not ${String(shardId)}`);
		const settings = this.#settings;
		signal?.throwIfAborted();
		const url = new URL(settings.url);
		url.searchParams.set("shard", String(shardId));
		// Ends every wait when the caller gives up; our own, so the caller's signal is only listened to.
		const stop = new AbortController();
		const onAbort = () => stop.abort(signal?.reason);
		signal?.addEventListener("abort", onAbort, { once: true });
		const inFlight = new Set<AbortController>();
		const start = (): Attempt => {
			const attempt = startAttempt(url.href, settings);
			inFlight.add(attempt.controller);
			void attempt.outcome.then(() => inFlight.delete(attempt.controller));
			return attempt;
		};
		/** The first of `promises`, or `"elapsed"` after `ms`; rejects with the abort reason once stopped. */
		const firstOf = async <T>(ms: number, promises: Promise<T>[]): Promise<T | "elapsed"> => {
			const timer = new AbortController();
			const elapsed = this.#pause(ms, timer.signal).then(() => "elapsed" as const);
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
					callSafely(() => settings.onRetry?.({ shardId, reason: "timeout", delayMs: 0, failures }));
					continue;
				}
				if (event.kind === "granted") return event.grant;
				if (event.kind === "refused") throw event.error;
				failures += 1;
				const retryAfterMs =
					event.retryAfterMs === undefined ? 0 : this.#honourMs(Math.min(event.retryAfterMs, settings.maxRetryAfterMs));
				const delayMs = Math.max(retryAfterMs, this.#backoffMs(failures));
				callSafely(() => settings.onRetry?.({ shardId, reason: event.reason, delayMs, failures }));
				if (failures >= settings.warnAfterFailures) {
					this.#warn(
						`identify queue ${settings.url.origin}${settings.url.pathname}: shard ${shardId}: ${failures} failed requests in a row, the last ${event.reason}; asking again in ${secondsOf(delayMs)}`,
					);
				}
				const granted = await firstOf(delayMs, [grantOf(previous)]);
				if (granted !== "elapsed") return granted.grant;
				current = start();
			}
		} finally {
			signal?.removeEventListener("abort", onAbort);
			for (const controller of inFlight) controller.abort();
		}
	}

	/**
	 * Resolves when shard `shardId` may IDENTIFY, however long that takes; rejects only when `signal`
	 * aborts, with its reason. Every other failure, whatever its type (a refusal, a broken option, a
	 * callback or `fetch` that throws), is told to `onError` (by default a warning, at most one per
	 * `warnIntervalMs`) and the shard asks again after a bounded, jittered delay.
	 */
	async waitUntilGranted(shardId: number, signal: AbortSignal, onError?: OnWaitError): Promise<IdentifyGrant> {
		for (let failures = 1; ; failures++) {
			let failure: unknown;
			try {
				return await this.waitForIdentify(shardId, signal);
			} catch (error) {
				failure = error;
			}
			signal.throwIfAborted();
			const retryInMs =
				failure instanceof IdentifyQueueError && failure.retryAfterMs !== undefined
					? this.#honourMs(Math.min(failure.retryAfterMs, longestRefusalWaitMs))
					: this.#backoffMs(failures);
			const info = { shardId, retryInMs };
			callSafely(() =>
				onError
					? onError(failure, info)
					: this.#warn(
							`identify queue: shard ${shardId}: ${describe(failure)}; asking again in ${secondsOf(retryInMs)}`,
						),
			);
			await this.#pause(retryInMs, signal);
			signal.throwIfAborted();
		}
	}

	/** The first warning at once, then at most one per `warnIntervalMs`, telling how many were held back. */
	#warn(message: string): void {
		const nowMs = this.#settings.now();
		if (nowMs - this.#lastWarningAtMs < this.#settings.warnIntervalMs) {
			this.#heldBackWarnings += 1;
			return;
		}
		const heldBack = this.#heldBackWarnings;
		this.#lastWarningAtMs = nowMs;
		this.#heldBackWarnings = 0;
		const text = heldBack === 0 ? message : `${message} (and ${heldBack} more warnings since the last one)`;
		callSafely(() => this.#settings.warn(text));
	}

	/** Exponential, capped, with "equal jitter": between half and all of the step, so never zero. */
	#backoffMs(failures: number): number {
		const { backoffBaseMs, backoffMaxMs, random } = this.#settings;
		const stepMs = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(failures - 1, 52));
		return Math.round(stepMs / 2 + (random() * stepMs) / 2);
	}

	/** At least `ms`, as asked, plus a jitter. */
	#honourMs(ms: number): number {
		return Math.round(ms + this.#settings.random() * Math.min(ms / 2, maxRetryAfterJitterMs));
	}

	/** The configured delay; a custom one that throws falls back to a timer, so a wait never spins. */
	#pause(ms: number, signal: AbortSignal): Promise<void> {
		try {
			return this.#settings.delay(ms, signal).catch(() => abortableDelay(ms, signal));
		} catch {
			return abortableDelay(ms, signal);
		}
	}
}

/** Resolves when shard `shardId` may IDENTIFY: `new GatewayQueueClient(options).waitForIdentify(shardId, signal)`. */
export async function waitForIdentify(shardId: number, options: WaitForIdentifyOptions): Promise<IdentifyGrant> {
	const { signal, ...clientOptions } = options;
	return new GatewayQueueClient(clientOptions).waitForIdentify(shardId, signal);
}

function startAttempt(url: string, settings: Settings): Attempt {
	const controller = new AbortController();
	const init: RequestInit = { headers: settings.headers, redirect: settings.redirect, signal: controller.signal };
	const failed = (error: unknown): Outcome => ({ kind: "retry", reason: describe(error) });
	// A custom fetch that throws at once is a failed request like any other.
	const outcome = new Promise<Response>((resolve) => resolve(settings.fetch(url, init)))
		.then((response) => outcomeOf(response, settings.maxRetryAfterMs), failed)
		.catch(failed);
	return { controller, outcome };
}

async function outcomeOf(response: Response, maxRetryAfterMs: number): Promise<Outcome> {
	const { status } = response;
	let text: string;
	try {
		text = await response.text();
	} catch (error) {
		return { kind: "retry", reason: `HTTP ${status}, its body cut off (${describe(error)})` };
	}
	const body = jsonOf(text);
	if (status === 200 && isRecord(body) && body.message === grantMessage)
		return { kind: "granted", grant: grantFrom(body) };
	// `opaqueredirect` (status 0) is what browsers give for a refused redirect.
	if (response.type === "opaqueredirect" || (status >= 300 && status < 400)) {
		const location = response.headers.get("location");
		const message = `HTTP ${status}: a redirect${location ? ` to ${originOf(location)}` : ""}, not followed since credentials are sent; set url to the queue's own URL`;
		return { kind: "refused", error: new IdentifyQueueError(status, "redirect", message) };
	}
	if (status >= 200 && status < 300) {
		const message = `HTTP ${status} without the grant message: is url the queue itself (not /_/health, /_/queues/..., the dashboard, or a proxy's page)?`;
		return { kind: "refused", error: new IdentifyQueueError(status, "not_a_grant", message) };
	}
	const { code = `http_${status}`, message = response.statusText, retryAfterMs } = errorFrom(body);
	const waitMs = retryAfterMs ?? retryAfterHeaderMs(response.headers.get("retry-after"));
	const reason = `HTTP ${status} ${code}`;
	if (status === 429) {
		if (waitMs !== undefined && waitMs > maxRetryAfterMs) {
			const refusal = new IdentifyQueueError(429, code, `${reason}: ${message}`, waitMs);
			return { kind: "refused", error: refusal };
		}
		return waitMs === undefined ? { kind: "retry", reason } : { kind: "retry", reason, retryAfterMs: waitMs };
	}
	// 5xx is the queue restarting, overloaded or timed out, or a proxy in between; a misconfigured queue stays so.
	if (status >= 500 && code !== "misconfigured")
		return waitMs === undefined ? { kind: "retry", reason } : { kind: "retry", reason, retryAfterMs: waitMs };
	return { kind: "refused", error: new IdentifyQueueError(status, code, `${reason}: ${message}`) };
}

function jsonOf(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}

function grantFrom(body: Record<string, unknown>): IdentifyGrant {
	const grant: IdentifyGrant = {};
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
	if (typeof body.retry_after_ms === "number" && Number.isFinite(body.retry_after_ms) && body.retry_after_ms >= 0)
		result.retryAfterMs = body.retry_after_ms;
	return result;
}

/** `Retry-After` in seconds or as an HTTP date (a proxy may send either). */
function retryAfterHeaderMs(value: string | null): number | undefined {
	if (value === null || value.trim() === "") return undefined;
	const seconds = Number(value);
	if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
	const dateMs = Date.parse(value);
	return Number.isFinite(dateMs) ? Math.max(0, dateMs - Date.now()) : undefined;
}

function originOf(location: string): string {
	try {
		return new URL(location).origin;
	} catch {
		return "another place";
	}
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

/** A user's callback that throws must not end a wait: it is told on the console instead. */
function callSafely(callback: () => void): void {
	try {
		callback();
	} catch (error) {
		console.error("gateway-queue-client: a callback threw:", error);
	}
}

/** An error as one line: `TypeError: fetch failed (ECONNREFUSED)`. */
function describe(error: unknown): string {
	if (error instanceof IdentifyQueueError) return error.message;
	if (!(error instanceof Error)) return String(error);
	const cause: unknown = error.cause;
	const code = isRecord(cause) && typeof cause.code === "string" ? ` (${cause.code})` : "";
	return `${error.name}: ${error.message}${code}`;
}

function secondsOf(ms: number): string {
	return `${(ms / 1000).toFixed(1)} s`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null;
}
