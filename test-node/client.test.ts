import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, test } from "vitest";
import {
	GatewayQueueClient,
	grantMessage,
	IdentifyQueueError,
	type QueueClientOptions,
	QueueIdentifyThrottler,
	type RetryInfo,
	type WaitForIdentifyOptions,
	waitForIdentify,
} from "../packages/client/src/index.ts";
import { errorBody, fakeDelays, fakeFetch, grantBody, settle } from "./support/client-fakes.ts";

const url = "https://queue.test/mybot";
const token = "MTA1.fake.token";
const attemptTimeoutMs = 60_000;

/** A client on a fake fetch and fake delays, with jitter fixed at its middle. */
function setUp(options: Partial<WaitForIdentifyOptions> = {}) {
	const { fetch, requests } = fakeFetch();
	const delays = fakeDelays();
	const retries: RetryInfo[] = [];
	const warnings: string[] = [];
	const controller = new AbortController();
	const wait = (shardId = 3) =>
		waitForIdentify(shardId, {
			url,
			token,
			fetch,
			delay: delays.delay,
			random: () => 0.5,
			signal: controller.signal,
			onRetry: (retry) => retries.push(retry),
			warn: (message) => warnings.push(message),
			...options,
		});
	return { requests, delays, retries, warnings, controller, wait };
}

/** The outcome of a promise that may not have settled. */
function track<T>(promise: Promise<T>) {
	const state: { value?: T; error?: unknown; settled: boolean } = { settled: false };
	promise.then(
		(value) => Object.assign(state, { value, settled: true }),
		(error: unknown) => Object.assign(state, { error, settled: true }),
	);
	return state;
}

describe("the request", () => {
	test("asks GET {url}?shard=N with Authorization: Bot, opts in to JSON refusals, and resolves with the grant", async () => {
		const { requests, wait } = setUp();
		const result = track(wait(3));
		await settle();
		expect(requests).toHaveLength(1);
		const [request] = requests;
		expect(request?.url.href).toBe("https://queue.test/mybot?shard=3");
		expect(request?.headers.get("authorization")).toBe(`Bot ${token}`);
		expect(request?.headers.get("gateway-queue-refusals")).toBe("json");
		expect(request?.headers.has("x-bot-token")).toBe(false);
		request?.respond(200, grantBody);
		await settle();
		expect(result.value).toEqual({ shard: 3, bucket: 1, waitedMs: 12, grantedAtMs: 1_700_000_000_000 });
	});

	test("with a secret, sends Authorization: Bearer <secret> and the token in X-Bot-Token", async () => {
		const { requests, wait } = setUp({ secret: "s3cret-0123456789abcdef" });
		void wait();
		await settle();
		expect(requests[0]?.headers.get("authorization")).toBe("Bearer s3cret-0123456789abcdef");
		expect(requests[0]?.headers.get("x-bot-token")).toBe(token);
		expect(requests[0]?.headers.get("gateway-queue-refusals")).toBe("json");
	});

	test("a twilight-style grant without fields is still a grant", async () => {
		const { requests, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(200, { message: grantMessage });
		await settle();
		expect(result.value).toEqual({});
	});

	test("rejects a bad shard id before any request", async () => {
		const { requests, wait } = setUp();
		await expect(wait(-1)).rejects.toThrow(RangeError);
		await expect(wait(2 ** 32)).rejects.toThrow(/shardId/);
		expect(requests).toHaveLength(0);
	});
});

describe("what is a grant (bug 2)", () => {
	test.each([
		["the health route's answer", 200, { status: "ok" }],
		["a queue's status", 200, { queue: "mybot", waiting: 0, buckets: [] }],
		["a dashboard or captive portal page", 200, "<!doctype html><title>Welcome</title>"],
		["another message", 200, { message: "You're free to connect now!" }],
		["an empty 200", 200, undefined],
		["a 201 with the grant message", 201, grantBody],
		["a 204", 204, undefined],
	])("%s is not a grant: it rejects with not_a_grant and says what url should be", async (_name, status, body) => {
		const { requests, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(status, body);
		await settle();
		expect(result.error).toMatchObject({ name: "IdentifyQueueError", status, code: "not_a_grant" });
		expect(String(result.error)).toContain("/_/health");
		expect(requests).toHaveLength(1);
	});
});

describe("options are checked when the client is built, each error naming its option", () => {
	test.each<[string, Record<string, unknown>, RegExp]>([
		["url undefined", { url: undefined }, /^url must be the queue's URL/],
		["url null", { url: null }, /^url must be the queue's URL as a string or URL, not null/],
		["a malformed url", { url: "queue.test/mybot" }, /^url must be an absolute http\(s\) URL/],
		["a ws: url", { url: "wss://queue.test/mybot" }, /^url must be an http\(s\) URL/],
		["a url with a query", { url: `${url}?shard=1` }, /^url must have no query/],
		["a url with the dashboard's fragment", { url: `${url}#token=x` }, /^url must have no query or fragment/],
		["a url with credentials", { url: "https://a:b@queue.test/mybot" }, /^url must carry no credentials/],
		["the health route", { url: "https://queue.test/_/health" }, /^url must name a queue/],
		["a token with Bot ", { token: "Bot abc.def" }, /^token must be the bot token alone/],
		["a token not a string", { token: 42 }, /^token must/],
		["a short secret", { secret: "short" }, /^secret must/],
		["a zero timeout, a tight loop", { attemptTimeoutMs: 0 }, /^attemptTimeoutMs must/],
		["a negative backoff", { backoffBaseMs: -1 }, /^backoffBaseMs must/],
		["a backoff beyond a timer", { backoffMaxMs: 2 ** 31 }, /^backoffMaxMs must/],
		["NaN", { maxRetryAfterMs: Number.NaN }, /^maxRetryAfterMs must/],
		["a string number", { attemptTimeoutMs: "1000" }, /^attemptTimeoutMs must/],
		["base above max", { backoffBaseMs: 5000, backoffMaxMs: 1000 }, /^backoffBaseMs \(5000\) must not exceed/],
		["warnAfterFailures 0", { warnAfterFailures: 0 }, /^warnAfterFailures must/],
		["a fetch that is not a function", { fetch: "fetch" }, /^fetch must be a function/],
		["an onRetry that is not a function", { onRetry: {} }, /^onRetry must be a function/],
		["a misspelt option", { tokne: token }, /^unknown option tokne/],
	])("%s", (_name, options, message) => {
		const build = () => new GatewayQueueClient({ url, ...options } as unknown as QueueClientOptions);
		expect(build).toThrow(message);
		// The throttler checks the same options, and its own.
		expect(() => new QueueIdentifyThrottler({ url, ...options } as unknown as QueueClientOptions)).toThrow(message);
	});

	test("no error echoes the token or the secret", () => {
		const secret = "not-the-secret";
		const badToken = "Bot MTA1.secret-token";
		for (const options of [{ token: badToken }, { secret }, { token: badToken, secret }]) {
			try {
				new GatewayQueueClient({ url, ...options });
				expect.unreachable();
			} catch (error) {
				expect(String(error)).not.toContain("secret-token");
				expect(String(error)).not.toContain(secret);
			}
		}
	});

	test("the throttler checks its own onError, and options that are not an object", () => {
		expect(() => new QueueIdentifyThrottler({ url, onError: "log" } as unknown as QueueClientOptions)).toThrow(
			/^onError must be a function/,
		);
		expect(() => new QueueIdentifyThrottler(undefined as unknown as QueueClientOptions)).toThrow(/^options must be/);
	});
});

describe("retries", () => {
	test("503 is retried after Retry-After plus jitter or the jittered backoff, whichever is longer, doubling per failure", async () => {
		const { requests, delays, retries, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(503, errorBody("queue_unavailable"), { "retry-after": "1" });
		await settle();
		// Failure 1: backoff 500-1000 ms (750 at the middle); Retry-After 1000 ms plus up to half of it (250 at the middle).
		delays.elapse(1250);
		await settle();
		requests[1]?.fail();
		await settle();
		// Failure 2: a network error, backoff 1000-2000 ms: 1500.
		delays.elapse(1500);
		await settle();
		requests[2]?.respond(503, errorBody("queue_overloaded"), { "retry-after": "5" });
		await settle();
		delays.elapse(6250);
		await settle();
		requests[3]?.respond(200, grantBody);
		await settle();
		expect(result.value).toMatchObject({ shard: 3 });
		expect(requests).toHaveLength(4);
		expect(retries.map(({ reason, delayMs }) => [reason, delayMs])).toEqual([
			["HTTP 503 queue_unavailable", 1250],
			["TypeError: fetch failed", 1500],
			["HTTP 503 queue_overloaded", 6250],
		]);
	});

	test("backoff is capped at backoffMaxMs and never below half of a step, whatever the jitter", async () => {
		const { requests, delays, retries, wait } = setUp({ random: () => 0, backoffBaseMs: 100, backoffMaxMs: 400 });
		void wait();
		for (let failure = 0; failure < 5; failure++) {
			await settle();
			requests[failure]?.respond(502, undefined);
			await settle();
			delays.elapse(retries[failure]?.delayMs ?? -1);
		}
		expect(retries.map((retry) => retry.delayMs)).toEqual([50, 100, 200, 200, 200]);
	});

	test("a short 429 Retry-After is waited out with jitter; retry_after_ms in the body wins over the header", async () => {
		const { requests, delays, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(429, { ...errorBody("rate_limited"), retry_after_ms: 2500 }, { "retry-after": "3" });
		await settle();
		expect(delays.pending.map((delay) => delay.ms)).toContain(3125);
		delays.elapse(3125);
		await settle();
		requests[1]?.respond(200, grantBody);
		await settle();
		expect(result.settled && result.error === undefined).toBe(true);
	});

	test("a 429 longer than maxRetryAfterMs (the daily budget reserve) rejects at once with retryAfterMs", async () => {
		const { requests, delays, wait } = setUp();
		const result = track(wait());
		await settle();
		const threeHoursMs = 3 * 3600_000;
		requests[0]?.respond(429, { ...errorBody("budget_reserve_reached"), retry_after_ms: threeHoursMs });
		await settle();
		expect(result.error).toBeInstanceOf(IdentifyQueueError);
		expect(result.error).toMatchObject({ status: 429, code: "budget_reserve_reached", retryAfterMs: threeHoursMs });
		expect(requests).toHaveLength(1);
		expect(delays.pending).toHaveLength(0);
	});

	test("with a larger maxRetryAfterMs, the same 429 is slept through", async () => {
		const { requests, delays, wait } = setUp({ maxRetryAfterMs: 4 * 3600_000 });
		void wait();
		await settle();
		requests[0]?.respond(429, errorBody("budget_reserve_reached"), { "retry-after": "10800" });
		await settle();
		delays.elapse(10_800_000 + 2500);
		await settle();
		expect(requests).toHaveLength(2);
	});

	test.each([
		[400, "invalid_shard"],
		[401, "invalid_token"],
		[404, "not_found"],
		[408, "cancelled"],
		[409, "superseded"],
		[500, "misconfigured"],
	])("%i %s is not retried: it rejects with the queue's code", async (status, code) => {
		const { requests, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(status, errorBody(code, "the reason"));
		await settle();
		expect(result.error).toMatchObject({ name: "IdentifyQueueError", status, code });
		expect(String(result.error)).toContain("the reason");
		expect(requests).toHaveLength(1);
	});

	test("a fetch that throws at once is a failed request, retried like a network error", async () => {
		const calls: string[] = [];
		const { delays, retries, wait } = setUp({
			fetch: (input) => {
				calls.push(String(input));
				if (calls.length === 1) throw new TypeError("bad transport");
				return Promise.resolve(Response.json(grantBody));
			},
		});
		const result = track(wait());
		await settle();
		delays.elapse(750);
		await settle();
		expect(retries.map((retry) => retry.reason)).toEqual(["TypeError: bad transport"]);
		expect(result.value).toMatchObject({ shard: 3 });
	});

	test("an onRetry that throws does not end the wait", async () => {
		const { requests, delays, wait } = setUp({
			onRetry: () => {
				throw new Error("broken logger");
			},
		});
		const result = track(wait());
		await settle();
		requests[0]?.respond(503, errorBody("queue_timeout"), { "retry-after": "1" });
		await settle();
		delays.elapse(1250);
		await settle();
		requests[1]?.respond(200, grantBody);
		await settle();
		expect(result.value).toMatchObject({ shard: 3 });
	});
});

describe("Retry-After is bounded and jittered (bug 3)", () => {
	test.each([
		["a proxy's day", "86400"],
		["beyond a timer's range (2^31 ms and more)", "3000000"],
		["an HTTP date a week ahead", new Date(Date.now() + 7 * 86_400_000).toUTCString()],
	])("a 503 asking %s is asked again after maxRetryAfterMs plus jitter", async (_name, retryAfter) => {
		const { requests, delays, retries, wait } = setUp();
		void wait();
		await settle();
		requests[0]?.respond(503, undefined, { "retry-after": retryAfter });
		await settle();
		expect(retries.map((retry) => retry.delayMs)).toEqual([60_000 + 2500]);
		delays.elapse(62_500);
		await settle();
		expect(requests).toHaveLength(2);
	});

	test("shards told Retry-After: 1 at once ask again at different times, never before the second", async () => {
		const delaysMs: number[] = [];
		for (const random of [0, 0.2, 0.4, 0.6, 0.8, 0.99]) {
			const { requests, retries, wait } = setUp({ random: () => random });
			void wait();
			await settle();
			requests[0]?.respond(503, errorBody("queue_unavailable"), { "retry-after": "1" });
			await settle();
			delaysMs.push(retries[0]?.delayMs ?? -1);
		}
		expect(new Set(delaysMs).size).toBe(6);
		for (const delayMs of delaysMs) expect(delayMs).toBeGreaterThanOrEqual(1000);
		for (const delayMs of delaysMs) expect(delayMs).toBeLessThanOrEqual(1500);
	});

	test("the throttler waits out a long 429 at most an hour, plus jitter, before asking again", async () => {
		const { fetch, requests } = fakeFetch();
		const delays = fakeDelays();
		const throttler = new QueueIdentifyThrottler({
			url,
			token,
			fetch,
			delay: delays.delay,
			random: () => 0,
			warn: () => {},
		});
		void throttler.waitForIdentify(2, new AbortController().signal);
		await settle();
		requests[0]?.respond(429, { ...errorBody("budget_reserve_reached"), retry_after_ms: 20 * 3600_000 });
		await settle();
		expect(delays.pending.map((delay) => delay.ms)).toEqual([3_600_000]);
	});
});

describe("redirects (bug 3)", () => {
	test("with credentials, redirects are not followed, and a redirect is a refusal naming where it went", async () => {
		const { requests, wait } = setUp();
		const result = track(wait());
		await settle();
		expect(requests[0]?.redirect).toBe("manual");
		requests[0]?.respond(307, undefined, { location: "https://elsewhere.test/collect" });
		await settle();
		expect(result.error).toMatchObject({ name: "IdentifyQueueError", status: 307, code: "redirect" });
		expect(String(result.error)).toContain("https://elsewhere.test");
	});

	test("without credentials (a tokenless queue), redirects are followed", async () => {
		const { fetch, requests } = fakeFetch();
		void waitForIdentify(1, { url, fetch });
		await settle();
		expect(requests[0]?.redirect).toBe("follow");
		expect(requests[0]?.headers.has("authorization")).toBe(false);
	});
});

describe("redirects over real HTTP (bug 3)", () => {
	async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
		const server = createServer(handler).listen(0, "127.0.0.1");
		await once(server, "listening");
		return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
	}

	test("a queue URL that redirects to another origin never gets the token or the secret there", async () => {
		const seen: IncomingHttpHeaders[] = [];
		const elsewhere = await listen((request, response) => {
			seen.push(request.headers);
			response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(grantBody));
		});
		const queue = await listen((_request, response) => {
			response.writeHead(307, { location: `${elsewhere.url}/collect` }).end();
		});
		try {
			const secret = "redirect-test-secret-0123456789";
			const wait = waitForIdentify(1, { url: `${queue.url}/mybot`, token, secret, warn: () => {} });
			await expect(wait).rejects.toMatchObject({ code: "redirect", status: 307 });
			expect(seen).toEqual([]);
		} finally {
			queue.server.close();
			elsewhere.server.close();
		}
	});
});

describe("an unreachable queue is reported, never silent (issue 12, 7)", () => {
	test("a warning after warnAfterFailures failures in a row, then at most one per warnIntervalMs, counting the rest", async () => {
		let nowMs = 0;
		const { requests, delays, retries, warnings, wait } = setUp({ now: () => nowMs, backoffMaxMs: 1000 });
		void wait();
		for (let failure = 0; failure < 9; failure++) {
			await settle();
			requests[failure]?.fail(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }));
			await settle();
			nowMs += 10_000;
			delays.elapse(retries[failure]?.delayMs ?? -1);
		}
		expect(warnings).toHaveLength(2);
		expect(warnings[0]).toBe(
			"identify queue https://queue.test/mybot: shard 3: 3 failed requests in a row, the last TypeError: fetch failed (ECONNREFUSED); asking again in 0.8 s",
		);
		// Failures come 10 s apart: the 9th, 60 s after the 3rd, is told, with the five between held back.
		expect(warnings[1]).toMatch(
			/^identify queue .*: shard 3: 9 failed requests in a row,.*\(and 5 more warnings since/,
		);
		for (const warning of warnings) expect(warning).not.toContain(token);
	});

	test("a warn that throws does not end the wait", async () => {
		const { requests, delays, retries, wait } = setUp({
			warnAfterFailures: 1,
			warn: () => {
				throw new Error("broken logger");
			},
		});
		const result = track(wait());
		await settle();
		requests[0]?.fail();
		await settle();
		delays.elapse(retries[0]?.delayMs ?? -1);
		await settle();
		requests[1]?.respond(200, grantBody);
		await settle();
		expect(result.value).toMatchObject({ shard: 3 });
	});

	test("a long wait in line is no failure: timeouts do not warn", async () => {
		const { delays, warnings, wait } = setUp();
		void wait();
		for (let timeout = 0; timeout < 5; timeout++) {
			await settle();
			delays.elapse(attemptTimeoutMs);
		}
		expect(warnings).toEqual([]);
	});
});

describe("an unanswered request", () => {
	test("after attemptTimeoutMs a new request goes out while the old one stays open to be superseded", async () => {
		const { requests, delays, retries, wait } = setUp();
		const result = track(wait());
		await settle();
		delays.elapse(attemptTimeoutMs);
		await settle();
		expect(requests).toHaveLength(2);
		// The old one is not dropped: the queue moves its place to the new one and answers it 409.
		expect(requests[0]?.signal.aborted).toBe(false);
		requests[0]?.respond(409, errorBody("superseded"));
		await settle();
		expect(result.settled).toBe(false);
		requests[1]?.respond(200, grantBody);
		await settle();
		expect(result.value).toMatchObject({ shard: 3 });
		expect(retries.map((retry) => retry.reason)).toEqual(["timeout"]);
	});

	test("if the old request is granted before the new one arrives, that grant counts and the new one is aborted", async () => {
		const { requests, delays, wait } = setUp();
		const result = track(wait());
		await settle();
		delays.elapse(attemptTimeoutMs);
		await settle();
		requests[0]?.respond(200, grantBody);
		await settle();
		expect(result.value).toMatchObject({ shard: 3 });
		expect(requests[1]?.signal.aborted).toBe(true);
	});

	test("an old request still unanswered when the next one times out is aborted: at most two are open", async () => {
		const { requests, delays, wait } = setUp();
		void wait();
		await settle();
		delays.elapse(attemptTimeoutMs);
		await settle();
		delays.elapse(attemptTimeoutMs);
		await settle();
		expect(requests).toHaveLength(3);
		expect(requests.map((request) => request.signal.aborted)).toEqual([true, false, false]);
	});
});

describe("abort", () => {
	test("aborting while a request is open aborts that request and rejects with the signal's reason", async () => {
		const { requests, delays, controller, wait } = setUp();
		const result = track(wait());
		await settle();
		controller.abort(new Error("shard closed"));
		await settle();
		expect(requests[0]?.signal.aborted).toBe(true);
		expect(result.error).toEqual(new Error("shard closed"));
		expect(delays.pending).toHaveLength(0);
	});

	test("aborting during a backoff rejects and sends nothing more", async () => {
		const { requests, controller, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(503, errorBody("queue_timeout"), { "retry-after": "1" });
		await settle();
		controller.abort();
		await settle();
		expect(result.error).toMatchObject({ name: "AbortError" });
		expect(requests).toHaveLength(1);
	});

	test("an already aborted signal sends no request", async () => {
		const { requests, controller, wait } = setUp();
		controller.abort();
		await expect(wait()).rejects.toMatchObject({ name: "AbortError" });
		expect(requests).toHaveLength(0);
	});

	test("the discord.js throttler passes the shard's signal: destroying the shard aborts the request", async () => {
		const { fetch, requests } = fakeFetch();
		const throttler = new QueueIdentifyThrottler({ url, token, fetch });
		const shardClosed = new AbortController();
		const result = track(throttler.waitForIdentify(5, shardClosed.signal));
		await settle();
		expect(requests[0]?.url.searchParams.get("shard")).toBe("5");
		shardClosed.abort();
		await settle();
		expect(requests[0]?.signal.aborted).toBe(true);
		expect(result.error).toMatchObject({ name: "AbortError" });
	});
});

describe("the discord.js throttler never rejects but on the shard's abort (bug 1)", () => {
	function setUpThrottler(options: Partial<ConstructorParameters<typeof QueueIdentifyThrottler>[0]> = {}) {
		const { fetch, requests } = fakeFetch();
		const delays = fakeDelays();
		const errors: string[] = [];
		const throttler = new QueueIdentifyThrottler({
			url,
			token,
			fetch,
			delay: delays.delay,
			random: () => 0.5,
			onError: (error, { shardId, retryInMs }) =>
				errors.push(`${shardId} ${error instanceof IdentifyQueueError ? error.code : String(error)} ${retryInMs}`),
			...options,
		});
		return { requests, delays, errors, throttler };
	}

	// @discordjs/ws answers a rejected wait by reconnecting and also sending an IDENTIFY without a grant.
	test("a refusal is reported and asked again after a jittered backoff that grows to backoffMaxMs", async () => {
		const { requests, delays, errors, throttler } = setUpThrottler();
		const result = track(throttler.waitForIdentify(2, new AbortController().signal));
		for (const delayMs of [750, 1500, 3000]) {
			await settle();
			requests.at(-1)?.respond(401, errorBody("invalid_token"));
			await settle();
			delays.elapse(delayMs);
		}
		await settle();
		requests.at(-1)?.respond(200, grantBody);
		await settle();
		expect(errors).toEqual(["2 invalid_token 750", "2 invalid_token 1500", "2 invalid_token 3000"]);
		expect(result).toEqual({ settled: true, value: undefined });
	});

	test("an answer that is not a grant (url at /_/health by mistake) is reported, never taken as a grant", async () => {
		const { requests, errors, throttler } = setUpThrottler();
		const result = track(throttler.waitForIdentify(2, new AbortController().signal));
		await settle();
		requests[0]?.respond(200, { status: "ok" });
		await settle();
		expect(errors).toEqual(["2 not_a_grant 750"]);
		expect(result.settled).toBe(false);
	});

	test("an error that is no IdentifyQueueError (a bad shard id) is reported and asked again, never thrown", async () => {
		const { requests, errors, throttler } = setUpThrottler();
		const result = track(throttler.waitForIdentify(-1, new AbortController().signal));
		await settle();
		expect(errors).toEqual([expect.stringMatching(/^-1 RangeError: shardId must be/)]);
		expect(requests).toHaveLength(0);
		expect(result.settled).toBe(false);
	});

	test("an onError that throws does not end the wait", async () => {
		const { requests, delays, throttler } = setUpThrottler({
			onError: () => {
				throw new Error("broken reporter");
			},
		});
		const result = track(throttler.waitForIdentify(2, new AbortController().signal));
		await settle();
		requests[0]?.respond(409, errorBody("superseded"));
		await settle();
		delays.elapse(750);
		await settle();
		requests[1]?.respond(200, grantBody);
		await settle();
		expect(result).toEqual({ settled: true, value: undefined });
	});

	test("a delay that throws falls back to a real timer: no tight loop", async () => {
		const { requests, throttler } = setUpThrottler({
			delay: () => {
				throw new Error("broken delay");
			},
			backoffBaseMs: 200,
		});
		const result = track(throttler.waitForIdentify(2, new AbortController().signal));
		await settle();
		requests[0]?.respond(401, errorBody("invalid_token"));
		await new Promise((resolve) => setTimeout(resolve, 50));
		expect(requests).toHaveLength(1);
		expect(result.settled).toBe(false);
	});

	test("by default a refusal is a warning, at most one per warnIntervalMs, naming no token", async () => {
		const { fetch, requests } = fakeFetch();
		const delays = fakeDelays();
		const warnings: string[] = [];
		const warn = (message: string) => warnings.push(message);
		const throttler = new QueueIdentifyThrottler({ url, token, fetch, delay: delays.delay, random: () => 0.5, warn });
		void throttler.waitForIdentify(2, new AbortController().signal);
		for (const delayMs of [750, 1500]) {
			await settle();
			requests.at(-1)?.respond(401, errorBody("invalid_token", "Discord rejected the token"));
			await settle();
			delays.elapse(delayMs);
		}
		expect(warnings).toEqual([
			"identify queue: shard 2: HTTP 401 invalid_token: Discord rejected the token; asking again in 0.8 s",
		]);
	});

	test("destroying the shard while it waits to ask again rejects", async () => {
		const { requests, throttler } = setUpThrottler();
		const shardClosed = new AbortController();
		const result = track(throttler.waitForIdentify(2, shardClosed.signal));
		await settle();
		requests[0]?.respond(409, errorBody("superseded"));
		await settle();
		shardClosed.abort();
		await settle();
		expect(result.error).toMatchObject({ name: "AbortError" });
		expect(requests).toHaveLength(1);
	});
});
