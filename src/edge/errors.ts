/** Every error the service answers with: its status, and when (the table of docs/contract.md, `npm run docs`). */
export const errors = {
	invalid_queue_name: {
		status: 400,
		when: "the path is not `/` or `/{queue}` (encoded slashes, `..`, unicode, too long)",
	},
	invalid_shard: { status: 400, when: '`shard` is not one whole number in range; the body has `"parameter": "shard"`' },
	invalid_query: {
		status: 400,
		when: "a query parameter other than `shard`; the body names it in `parameter` (unless it is long or odd, like a pasted token)",
	},
	invalid_header: { status: 400, when: "`Gateway-Queue-Refusals` with another value than `json`" },
	invalid_authorization: {
		status: 400,
		when: "an `Authorization` header in no scheme the queue knows (`Bot`, `Bearer`, `Basic`), such as a bare token without `Bot `",
	},
	invalid_token: {
		status: 401,
		when: "`Authorization: Bot` or `X-Bot-Token` without a well-formed token, a token sent two ways at once, or Discord rejected the token",
	},
	unauthorized: {
		status: 401,
		when: "`QUEUE_SECRET` is set and the request does not present it; with `WWW-Authenticate`",
	},
	cross_site: {
		status: 403,
		when: "a browser marked the request `Sec-Fetch-Site: cross-site` (a page of another site); no shard is a browser",
	},
	not_found: { status: 404, when: "an unknown route under `/_/` (reserved for the service)" },
	method_not_allowed: { status: 405, when: "a `/_/` route with a method other than GET or HEAD" },
	cancelled: { status: 408, when: "the client went away before its grant (nobody normally reads this)" },
	superseded: {
		status: 409,
		when: "with `Gateway-Queue-Refusals: json`: a newer request for the same shard took this request's place",
	},
	url_too_long: { status: 414, when: "the path and query are longer than `MAX_URL_LENGTH`" },
	budget_reserve_reached: {
		status: 429,
		when: "with `Gateway-Queue-Refusals: json`: the bot's daily session starts are down to the reserve; `Retry-After` is the reset",
	},
	headers_too_large: { status: 431, when: "the headers are larger than `MAX_HEADER_BYTES`" },
	misconfigured: {
		status: 500,
		when: "a var or secret is invalid, on every route, `/_/health` included; the message names it",
	},
	internal: { status: 500, when: "a bug: logged as `unexpected_error`" },
	queue_unavailable: {
		status: 503,
		when: "`/_/queues/{queue}` and `/_/metrics/{queue}` only: the queue object could not be reached; `Retry-After: 1` (a waiting request is never answered this: it is held)",
	},
	queue_overloaded: {
		status: 503,
		when: "with `Gateway-Queue-Refusals: json`: the queue already holds `MAX_WAITERS_PER_QUEUE` waiting requests; `Retry-After: 5`",
	},
	queue_timeout: {
		status: 503,
		when: "with `Gateway-Queue-Refusals: json`: no grant within `WAIT_TIMEOUT_MS`; `Retry-After: 1`",
	},
} as const satisfies Record<string, { status: number; when: string }>;

export type ErrorCode = keyof typeof errors;

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ApiErrorOptions {
	/** Extra fields of the JSON body. */
	details?: Record<string, JsonValue>;
	retryAfterSeconds?: number;
	headers?: Record<string, string>;
}

/** An error meant for the client: its code, message and details are safe to show. */
export class ApiError extends Error {
	override name = "ApiError";
	readonly code: ErrorCode;
	readonly options: ApiErrorOptions;

	constructor(code: ErrorCode, message: string, options: ApiErrorOptions = {}) {
		super(message);
		this.code = code;
		this.options = options;
	}

	get status(): (typeof errors)[ErrorCode]["status"] {
		return errors[this.code].status;
	}

	toResponse(): Response {
		const headers = new Headers(this.options.headers);
		headers.set("content-type", "application/json");
		if (this.options.retryAfterSeconds !== undefined)
			headers.set("retry-after", String(this.options.retryAfterSeconds));
		const body = { error: this.code, message: this.message, ...this.options.details };
		return new Response(JSON.stringify(body), { status: this.status, headers });
	}
}
