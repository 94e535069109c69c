import { defaultMaxQueueNameLength } from "../config/settings";
import { ApiError } from "./errors";

export const defaultQueueName = "default";
const queueNamePattern = /^[A-Za-z0-9-][A-Za-z0-9._-]*$/;
const shardPattern = /^\d{1,10}$/;
const maxShard = 2 ** 32 - 1;

/**
 * The queue named by a request path, as sent (not URL-decoded or normalised):
 * `/` is `default`, `/{queue}` and `/{queue}/` name one queue.
 */
export function parseQueueName(rawPath: string, maxLength = defaultMaxQueueNameLength): string {
	if (rawPath === "/") return defaultQueueName;
	const name = rawPath.match(/^\/([^/]+)\/?$/)?.[1];
	if (name !== undefined && name.length <= maxLength && queueNamePattern.test(name)) return name;
	throw new ApiError(
		"invalid_queue_name",
		`The path must be / or /{queue}: 1-${maxLength} characters from A-Z a-z 0-9 . _ -, not starting with _ or .`,
	);
}

/** `?shard=N`: a whole number from 0 to 2^32-1, or `null` when absent. */
export function parseShard(query: URLSearchParams): number | null {
	const values = query.getAll("shard");
	if (values.length === 0) return null;
	const value = values.length === 1 ? values[0] : undefined;
	if (value !== undefined && shardPattern.test(value) && Number(value) <= maxShard) return Number(value);
	throw new ApiError(
		"invalid_shard",
		`Query parameter 'shard' must appear once, as a whole number from 0 to ${maxShard}.`,
		{
			details: { parameter: "shard" },
		},
	);
}

/**
 * Refuses a query parameter other than `allowed`: `?shards=3` or `?shard_id=3`
 * would otherwise be a request without a shard. The name is echoed only when it
 * is short and plain (a bot token pasted there is not).
 */
export function checkQueryParameters(query: URLSearchParams, allowed: readonly string[]): void {
	for (const name of query.keys()) {
		if (allowed.includes(name)) continue;
		const shown = /^[A-Za-z0-9_.-]{1,32}$/.test(name) ? `'${name}'` : "a parameter";
		const known =
			allowed.length > 0 ? `only ${allowed.map((known) => `'${known}'`).join(", ")} is known` : "none is known";
		throw new ApiError("invalid_query", `Unknown query parameter ${shown}: ${known} here.`, {
			details: { parameter: shown === "a parameter" ? null : name },
		});
	}
}

/** `Gateway-Queue-Refusals`: a client that sends it with `json` reads refusals; others are held, never refused. */
export const refusalsHeader = "Gateway-Queue-Refusals";

export function readsRefusals(headers: Headers): boolean {
	const value = headers.get(refusalsHeader);
	if (value === null) return false;
	if (value.trim().toLowerCase() === "json") return true;
	throw new ApiError(
		"invalid_header",
		`${refusalsHeader} must be "json" (refusals answered as JSON), or left out (held until granted, never refused).`,
		{ details: { header: refusalsHeader } },
	);
}

export interface RequestSizeLimits {
	maxUrlLength: number;
	maxHeaderBytes: number;
}

/**
 * Refuses requests larger than any client of the queue sends, before anything
 * reads them further: a path and query over `maxUrlLength` characters (414), or
 * headers over `maxHeaderBytes` (431), counted as `name: value` lines.
 */
export function checkRequestSize(
	request: Request,
	url: URL,
	{ maxUrlLength, maxHeaderBytes }: RequestSizeLimits,
): void {
	if (url.pathname.length + url.search.length > maxUrlLength) {
		throw new ApiError("url_too_long", `The path and query may be at most ${maxUrlLength} characters.`);
	}
	let headerBytes = 0;
	for (const [name, value] of request.headers) headerBytes += name.length + value.length + 4;
	if (headerBytes > maxHeaderBytes) {
		throw new ApiError("headers_too_large", `The request headers may be at most ${maxHeaderBytes} bytes.`);
	}
}

/** The path of a URL exactly as sent, without the query. */
export function rawPathOf(url: string): string {
	const pathStart = url.indexOf("/", url.indexOf("//") + 2);
	if (pathStart === -1) return "/";
	const queryStart = url.indexOf("?", pathStart);
	return url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
}
