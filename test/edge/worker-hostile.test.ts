import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { queueObjectName } from "../../src/edge/queue-call";
import { fakeDiscord, gatewayBotBody } from "../support/discord-fake";
import { type StorageDump, storageDump } from "../support/storage-dump";
import { call } from "../support/worker";

/**
 * Hostile requests against the whole Worker in workerd (MAX_CONCURRENCY=4,
 * MAX_WAITERS_PER_QUEUE=50, no QUEUE_SECRET; URL, header and name bounds at
 * their defaults: 2048, 16384, 64). Each gets a deliberate answer, never a 500,
 * and none touches the sentinel queue's state.
 */
interface HostileCase {
	name: string;
	/** The path and query; `{q}` is a queue of the case's own, `{s}` the sentinel queue. */
	target: string | ((q: string) => string);
	init?: RequestInit;
	status: number;
	error?: string;
}

const sentinel = `sentinel-${crypto.randomUUID()}`;
const token = "hostile.test-token_1";
const long = (length: number) => "a".repeat(length);
/** Queue names of the cases are 38 characters: `/{q}` is 39. */
const urlOf = (length: number) => (q: string) => `/${q}?pad=${long(length - q.length - 6)}`;
const manyHeaders = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-h-${i}`, long(100)]));

const cases: HostileCase[] = [
	// Paths: encoded slashes and backslashes, dot segments, unicode, control bytes, length.
	{ name: "encoded slash", target: "/{s}%2Fx", status: 400, error: "invalid_queue_name" },
	{ name: "encoded slash, lower case", target: "/{s}%2fx", status: 400, error: "invalid_queue_name" },
	{ name: "encoded backslash", target: "/{s}%5Cx", status: 400, error: "invalid_queue_name" },
	{ name: "backslash (read as / by URL parsing)", target: "/{s}\\x", status: 400, error: "invalid_queue_name" },
	{ name: "two segments", target: "/{s}/x", status: 400, error: "invalid_queue_name" },
	{ name: "double slash", target: "//{s}", status: 400, error: "invalid_queue_name" },
	{ name: "trailing double slash", target: "/{s}//", status: 400, error: "invalid_queue_name" },
	{ name: "encoded dot segment with slash", target: "/{s}/..%2F", status: 400, error: "invalid_queue_name" },
	{ name: "encoded slash then dots", target: "/{s}%2F..%2F{s}", status: 400, error: "invalid_queue_name" },
	{ name: "dot dot alone (resolved to /)", target: "/..?shard=1", status: 200 },
	{ name: "encoded dot dot (resolved to /)", target: "/%2e%2E?shard=2", status: 200 },
	{ name: "dot segment resolved to a queue of its own", target: "/x/../{q}", status: 200 },
	{ name: "dot segment after the queue", target: "/{q}/x/..", status: 200 },
	{ name: "name starting with .", target: "/.{s}", status: 400, error: "invalid_queue_name" },
	{ name: "name starting with _", target: "/_{s}", status: 400, error: "invalid_queue_name" },
	{ name: ".env", target: "/.env", status: 400, error: "invalid_queue_name" },
	{ name: "unicode, encoded", target: "/caf%C3%A9", status: 400, error: "invalid_queue_name" },
	{ name: "unicode, raw", target: "/café", status: 400, error: "invalid_queue_name" },
	{ name: "emoji", target: "/😀", status: 400, error: "invalid_queue_name" },
	{ name: "fullwidth letters", target: "/ｓｅｎｔｉｎｅｌ", status: 400, error: "invalid_queue_name" },
	{ name: "NUL byte", target: "/{s}%00", status: 400, error: "invalid_queue_name" },
	{ name: "CRLF", target: "/{s}%0D%0Ax", status: 400, error: "invalid_queue_name" },
	{ name: "broken percent escape", target: "/{s}%ZZ", status: 400, error: "invalid_queue_name" },
	{ name: "space", target: "/{s}%20", status: 400, error: "invalid_queue_name" },
	{ name: "64-character name", target: `/${long(63)}q`, status: 200 },
	{ name: "65-character name", target: `/${long(65)}`, status: 400, error: "invalid_queue_name" },
	{ name: "10 kB name", target: `/${long(10_000)}`, status: 414, error: "url_too_long" },
	{ name: "2 kB name under the URL bound", target: `/${long(2000)}`, status: 400, error: "invalid_queue_name" },
	// Within the bound, the request is read further (and its unknown parameter refused).
	{ name: "path and query of exactly 2048 characters", target: urlOf(2048), status: 400, error: "invalid_query" },
	{ name: "path and query of 2049 characters", target: urlOf(2049), status: 414, error: "url_too_long" },
	{ name: "case is part of the name (another queue)", target: "/{Q}", status: 200 },

	// Query strings.
	{ name: "shard=-1", target: "/{s}?shard=-1", status: 400, error: "invalid_shard" },
	{ name: "shard=1e3", target: "/{s}?shard=1e3", status: 400, error: "invalid_shard" },
	{ name: "shard=0x10", target: "/{s}?shard=0x10", status: 400, error: "invalid_shard" },
	{ name: "shard=99999999999", target: "/{s}?shard=99999999999", status: 400, error: "invalid_shard" },
	{ name: "shard=4294967296", target: "/{s}?shard=4294967296", status: 400, error: "invalid_shard" },
	{ name: "repeated shard", target: "/{s}?shard=1&shard=1", status: 400, error: "invalid_shard" },
	{ name: "empty shard", target: "/{s}?shard=", status: 400, error: "invalid_shard" },
	{ name: "shard=1.0", target: "/{s}?shard=1.0", status: 400, error: "invalid_shard" },
	{ name: "shard=+1", target: "/{s}?shard=%2B1", status: 400, error: "invalid_shard" },
	{ name: "shard with a space", target: "/{s}?shard=%201", status: 400, error: "invalid_shard" },
	{ name: "shard=Infinity", target: "/{s}?shard=Infinity", status: 400, error: "invalid_shard" },
	{ name: "shard=NaN", target: "/{s}?shard=NaN", status: 400, error: "invalid_shard" },
	{ name: "Arabic-Indic digit", target: "/{s}?shard=%D9%A3", status: 400, error: "invalid_shard" },
	{ name: "encoded & inside shard", target: "/{s}?shard=1%262", status: 400, error: "invalid_shard" },
	{ name: "shard=4294967295 (the largest)", target: "/{q}?shard=4294967295", status: 200 },
	{ name: "leading zeros", target: "/{q}?shard=0007", status: 200 },
	{ name: "SHARD in capitals (not the parameter)", target: "/{s}?SHARD=-1", status: 400, error: "invalid_query" },
	{ name: "shard[] (not the parameter)", target: "/{s}?shard[]=-1", status: 400, error: "invalid_query" },
	{ name: "shards=3 (a mistake, not a shard)", target: "/{s}?shards=3", status: 400, error: "invalid_query" },
	{ name: "shard_id=3 (a mistake, not a shard)", target: "/{s}?shard_id=3", status: 400, error: "invalid_query" },
	{ name: "a cache-buster beside the shard", target: "/{s}?shard=1&_=123", status: 400, error: "invalid_query" },
	{ name: "query of 2 kB", target: `/{s}?x=${long(2100)}`, status: 414, error: "url_too_long" },

	// Headers.
	{
		name: "Authorization: Bot",
		target: "/{s}",
		init: { headers: { authorization: "Bot" } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Authorization: Bot and spaces",
		target: "/{s}",
		init: { headers: { authorization: "Bot    " } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Authorization: Bot, tab",
		target: "/{s}",
		init: { headers: { authorization: "Bot\t" } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Bot token with spaces",
		target: "/{s}",
		init: { headers: { authorization: "Bot a b c" } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Bot token with a slash",
		target: "/{s}",
		init: { headers: { authorization: "Bot a/b" } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Bot token with latin-1",
		target: "/{s}",
		init: { headers: { authorization: "Bot tök\u00e9n" } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Bot token of 300 characters",
		target: "/{s}",
		init: { headers: { authorization: `Bot ${long(300)}` } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Bot token of 10 kB",
		target: "/{s}",
		init: { headers: { authorization: `Bot ${long(10_000)}` } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Authorization of 20 kB",
		target: "/{s}",
		init: { headers: { authorization: `Bot ${long(20_000)}` } },
		status: 431,
		error: "headers_too_large",
	},
	{
		name: "200 headers of 100 bytes",
		target: "/{s}",
		init: { headers: manyHeaders },
		status: 431,
		error: "headers_too_large",
	},
	{
		name: "X-Bot-Token empty",
		target: "/{s}",
		init: { headers: { "x-bot-token": "" } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "X-Bot-Token: Bot",
		target: "/{s}",
		init: { headers: { "x-bot-token": "Bot" } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "token in Authorization and X-Bot-Token",
		target: "/{s}",
		init: { headers: { authorization: `Bot ${token}`, "x-bot-token": token } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "Basic with an unreadable user",
		target: "/{s}",
		init: { headers: { authorization: `Basic ${btoa("a b:x")}` } },
		status: 401,
		error: "invalid_token",
	},
	{
		name: "valid token: the bot's own queue, not the sentinel",
		target: "/{s}",
		init: { headers: { "x-bot-token": token } },
		status: 200,
	},
	{
		name: "Bearer without QUEUE_SECRET (ignored)",
		target: "/{q}",
		init: { headers: { authorization: "Bearer guess" } },
		status: 200,
	},
	{
		name: "unreadable Basic (ignored)",
		target: "/{q}",
		init: { headers: { authorization: "Basic %%%" } },
		status: 200,
	},
	{
		name: "unknown scheme",
		target: "/{s}",
		init: { headers: { authorization: "Negotiate abc" } },
		status: 400,
		error: "invalid_authorization",
	},
	{
		name: "a bare token without Bot",
		target: "/{s}",
		init: { headers: { authorization: "MTIz.abc.def" } },
		status: 400,
		error: "invalid_authorization",
	},
	{
		name: "Gateway-Queue-Refusals with another value than json",
		target: "/{s}",
		init: { headers: { "gateway-queue-refusals": "yes" } },
		status: 400,
		error: "invalid_header",
	},
	{
		name: "a page of another site (Sec-Fetch-Site: cross-site)",
		target: "/{s}",
		init: { headers: { "sec-fetch-site": "cross-site" } },
		status: 403,
		error: "cross_site",
	},

	// Methods.
	{ name: "OPTIONS", target: "/{q}", init: { method: "OPTIONS" }, status: 200 },
	{ name: "HEAD", target: "/{q}", init: { method: "HEAD" }, status: 200 },
	{ name: "PROPFIND", target: "/{q}", init: { method: "PROPFIND" }, status: 200 },
	{ name: "DELETE with a body", target: "/{q}", init: { method: "DELETE", body: long(5000) }, status: 200 },
	{ name: "POST /_/health", target: "/_/health", init: { method: "POST" }, status: 405, error: "method_not_allowed" },
	{
		name: "OPTIONS /_/health",
		target: "/_/health",
		init: { method: "OPTIONS" },
		status: 405,
		error: "method_not_allowed",
	},
	{ name: "/_/health/", target: "/_/health/", status: 404, error: "not_found" },
	{ name: "/_/HEALTH", target: "/_/HEALTH", status: 404, error: "not_found" },
	{ name: "/_/health with a query", target: "/_/health?shard=-1", status: 200 },
	{
		name: "/_/../{s} (resolved to the sentinel's name, with a bad shard)",
		target: "/_/../{s}?shard=x",
		status: 400,
		error: "invalid_shard",
	},
	{ name: "/_/ unknown route", target: "/_/{s}", status: 404, error: "not_found" },
];

const sentinelStub = async () => env.GATEWAY_QUEUE.getByName(await queueObjectName(sentinel, undefined));
let sentinelBefore: StorageDump;

beforeAll(async () => {
	const first = await call(`/${sentinel}?shard=1`);
	expect(first.status).toBe(200);
	sentinelBefore = await storageDump(await sentinelStub());
	expect(Object.values(sentinelBefore.tables).flat()).not.toEqual([]);
});

beforeEach(() => {
	fakeDiscord({ body: gatewayBotBody(4) });
});

describe("hostile requests", () => {
	const rows = cases.map((row) => ({ ...row, expected: `${row.status} ${row.error ?? "ok"}` }));
	it.each(rows)("$name → $expected", async ({ target, init, status, error }) => {
		const q = `h-${crypto.randomUUID()}`;
		const path = (typeof target === "string" ? target : target(q))
			.replaceAll("{q}", q)
			.replaceAll("{s}", sentinel)
			.replaceAll("{Q}", q.toUpperCase());
		const response = await call(path, init);
		expect(response.status).toBe(status);
		if (init?.method === "HEAD") return;
		expect(response.headers.get("content-type")).toMatch(/^application\/json/);
		const body = await response.json<{ error?: string; message?: string }>();
		expect(body.error).toBe(error);
		if (error) expect(body.message).toEqual(expect.any(String));
	});

	it("left the sentinel queue as it was", async () => {
		expect(await storageDump(await sentinelStub())).toEqual(sentinelBefore);
	});
});
