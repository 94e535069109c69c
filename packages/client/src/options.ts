/** The client's options, checked once when a client, throttler or adapter is built. */

export interface QueueClientOptions {
	/** The queue's URL, e.g. `https://gateway-queue.example.workers.dev/mybot`, without a query: `?shard=N` is added. */
	url: string | URL;
	/** The bot token: the queue becomes this bot's own and reads its `max_concurrency` from Discord. */
	token?: string;
	/** The deployment's `QUEUE_SECRET`, when it has one: sent as `Authorization: Bearer`, the token then in `X-Bot-Token`. */
	secret?: string;
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
	 * The longest `Retry-After` that is waited out (default 60 s). A `429` asking longer (the queue's daily
	 * budget reserve can mean hours) rejects with an `IdentifyQueueError` carrying `retryAfterMs`; a `5xx`
	 * asking longer (a proxy's `Retry-After: 86400`) is asked again after this long.
	 */
	maxRetryAfterMs?: number;
	/** Failed requests in a row before a warning that the queue cannot be reached (default 3). */
	warnAfterFailures?: number;
	/** Warnings of one client are at most this far apart (default 60 s); held-back ones are counted in the next. */
	warnIntervalMs?: number;
	/** Where warnings go (default `console.warn`). They never contain the token or the secret. */
	warn?: (message: string) => void;
	/** Told about each retry, e.g. to log it. */
	onRetry?: (retry: RetryInfo) => void;
	/** For tests and custom transports. */
	fetch?: typeof fetch;
	/** Waits `ms` or until `signal` aborts, whichever is first (resolving either way). For tests. */
	delay?: (ms: number, signal: AbortSignal) => Promise<void>;
	/** A number in [0, 1) for the jitter. For tests. */
	random?: () => number;
	/** The clock for spacing warnings, in ms. For tests. */
	now?: () => number;
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

/** The longest timer Node.js and browsers keep: a longer one fires after 1 ms. */
export const longestTimerMs = 2 ** 31 - 1;

export const defaults = {
	attemptTimeoutMs: 60_000,
	backoffBaseMs: 1_000,
	backoffMaxMs: 30_000,
	maxRetryAfterMs: 60_000,
	warnAfterFailures: 3,
	warnIntervalMs: 60_000,
};

export interface Settings {
	url: URL;
	headers: Headers;
	/** Credentials go with every request, so no redirect may carry them elsewhere. */
	redirect: "follow" | "manual";
	attemptTimeoutMs: number;
	backoffBaseMs: number;
	backoffMaxMs: number;
	maxRetryAfterMs: number;
	warnAfterFailures: number;
	warnIntervalMs: number;
	warn: (message: string) => void;
	onRetry: ((retry: RetryInfo) => void) | undefined;
	fetch: typeof fetch;
	delay: (ms: number, signal: AbortSignal) => Promise<void>;
	random: () => number;
	now: () => number;
}

/** Opts in to the queue's JSON refusals (`409`, `429`, `503` ...) instead of being held. */
export const refusalsHeader: [string, string] = ["gateway-queue-refusals", "json"];

const durations = ["attemptTimeoutMs", "backoffBaseMs", "backoffMaxMs", "maxRetryAfterMs", "warnIntervalMs"] as const;
const functions = ["warn", "onRetry", "fetch", "delay", "random", "now"] as const;
const known: readonly string[] = ["url", "token", "secret", "warnAfterFailures", ...durations, ...functions];

// The queue's own rules (docs/security.md, Bounds and The secret): a token or secret it would refuse fails here, at build time.
const tokenPattern = /^[A-Za-z0-9._-]{1,256}$/;
const secretPattern = /^[\x21-\x7e]{16,1024}$/;

/**
 * Checks `options` (and only the names in `extra` besides the client's own) and resolves them.
 * Throws a `TypeError` or `RangeError` naming the option; never echoes the token or the secret.
 */
export function settingsOf(options: QueueClientOptions, extra: readonly string[] = []): Settings {
	checkObject(options);
	for (const name of Object.keys(options)) {
		if (!known.includes(name) && !extra.includes(name)) throw new TypeError(`unknown option ${name}`);
	}
	const url = urlOf(options.url);
	const { token, secret } = options;
	if (token !== undefined && !(typeof token === "string" && tokenPattern.test(token)))
		throw new TypeError('token must be the bot token alone: 1-256 of A-Z a-z 0-9 . _ -, without "Bot "');
	if (secret !== undefined && !(typeof secret === "string" && secretPattern.test(secret)))
		throw new TypeError("secret must be the deployment's QUEUE_SECRET: 16-1024 visible ASCII characters");
	for (const name of functions) checkFunction(name, options[name]);
	const resolved = { ...defaults };
	for (const name of durations) {
		const value = options[name] ?? defaults[name];
		// Zero would make a tight loop of requests; longer than a timer holds would fire at once.
		if (!(typeof value === "number" && value > 0 && value <= longestTimerMs))
			throw new RangeError(`${name} must be a number of ms in (0, ${longestTimerMs}], not ${String(value)}`);
		resolved[name] = value;
	}
	if (resolved.backoffBaseMs > resolved.backoffMaxMs)
		throw new RangeError(
			`backoffBaseMs (${resolved.backoffBaseMs}) must not exceed backoffMaxMs (${resolved.backoffMaxMs})`,
		);
	const warnAfterFailures = options.warnAfterFailures ?? defaults.warnAfterFailures;
	if (!(Number.isSafeInteger(warnAfterFailures) && warnAfterFailures >= 1))
		throw new RangeError(`warnAfterFailures must be a whole number ≥ 1, not ${String(warnAfterFailures)}`);
	resolved.warnAfterFailures = warnAfterFailures;

	const headers = new Headers([refusalsHeader]);
	if (secret !== undefined) {
		headers.set("authorization", `Bearer ${secret}`);
		if (token !== undefined) headers.set("x-bot-token", token);
	} else if (token !== undefined) {
		headers.set("authorization", `Bot ${token}`);
	}
	const fetchImpl = options.fetch ?? globalThis.fetch;
	if (typeof fetchImpl !== "function") throw new TypeError("fetch must be given: this runtime has no global fetch");
	return {
		...resolved,
		url,
		headers,
		redirect: token === undefined && secret === undefined ? "follow" : "manual",
		warn: options.warn ?? ((message) => console.warn(message)),
		onRetry: options.onRetry,
		fetch: fetchImpl,
		delay: options.delay ?? abortableDelay,
		random: options.random ?? Math.random,
		now: options.now ?? Date.now,
	};
}

/** For adapters, before they take their own options out. */
export function checkObject(options: unknown): asserts options is object {
	if (typeof options !== "object" || options === null) throw new TypeError("options must be an object with url");
}

export function checkFunction(name: string, value: unknown): void {
	if (value !== undefined && typeof value !== "function") throw new TypeError(`${name} must be a function`);
}

function urlOf(value: unknown): URL {
	if (!(typeof value === "string" || value instanceof URL))
		throw new TypeError(
			`url must be the queue's URL as a string or URL, not ${value === null ? "null" : typeof value}`,
		);
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw new TypeError(`url must be an absolute http(s) URL, not ${JSON.stringify(String(value))}`);
	}
	if (url.protocol !== "https:" && url.protocol !== "http:")
		throw new TypeError(`url must be an http(s) URL, not ${url.protocol}`);
	if (url.username !== "" || url.password !== "")
		throw new TypeError("url must carry no credentials (user:password@): pass them as token and secret");
	if (url.search !== "" || url.hash !== "")
		throw new TypeError(
			"url must have no query or fragment: ?shard=N is added, and the queue refuses other parameters",
		);
	if (url.pathname.startsWith("/_/"))
		throw new TypeError(`url must name a queue (/ or /{queue}), not the service route ${url.pathname}`);
	return url;
}

/** Resolves after `ms` (at most a timer's longest), or at once when `signal` aborts. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const done = () => {
			clearTimeout(timer);
			signal.removeEventListener("abort", done);
			resolve();
		};
		const timer = setTimeout(done, Math.min(Math.max(ms, 0), longestTimerMs));
		signal.addEventListener("abort", done, { once: true });
	});
}
