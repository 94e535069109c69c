/** Every error the service answers with, and its status. */
export const errorStatus = {
	invalid_queue_name: 400,
	invalid_shard: 400,
	invalid_query: 400,
	invalid_header: 400,
	invalid_authorization: 400,
	invalid_token: 401,
	unauthorized: 401,
	cross_site: 403,
	not_found: 404,
	method_not_allowed: 405,
	cancelled: 408,
	superseded: 409,
	budget_reserve_reached: 429,
	url_too_long: 414,
	headers_too_large: 431,
	misconfigured: 500,
	internal: 500,
	queue_unavailable: 503,
	queue_overloaded: 503,
	queue_timeout: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

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

	constructor(
		readonly code: ErrorCode,
		message: string,
		readonly options: ApiErrorOptions = {},
	) {
		super(message);
	}

	get status(): (typeof errorStatus)[ErrorCode] {
		return errorStatus[this.code];
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
