import { describe, expect, test } from "vitest";
import {
	IdentifyQueueError,
	QueueIdentifyThrottler,
	type RetryInfo,
	type WaitForIdentifyOptions,
	waitForIdentify,
} from "../src/client/index.ts";
import { errorBody, fakeDelays, fakeFetch, grantBody, settle } from "./client-fakes.ts";

const url = "https://queue.test/mybot";
const token = "MTA1.fake.token";
const attemptTimeoutMs = 60_000;

/** A client on a fake fetch and fake delays, with jitter fixed at its middle. */
function setUp(options: Partial<WaitForIdentifyOptions> = {}) {
	const { fetch, requests } = fakeFetch();
	const delays = fakeDelays();
	const retries: RetryInfo[] = [];
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
			...options,
		});
	return { requests, delays, retries, controller, wait };
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
	test("asks GET {url}?shard=N with Authorization: Bot and resolves with the grant", async () => {
		const { requests, wait } = setUp();
		const result = track(wait(3));
		await settle();
		expect(requests).toHaveLength(1);
		const [request] = requests;
		expect(request?.url.href).toBe("https://queue.test/mybot?shard=3");
		expect(request?.headers.get("authorization")).toBe(`Bot ${token}`);
		expect(request?.headers.has("x-bot-token")).toBe(false);
		request?.respond(200, grantBody);
		await settle();
		expect(result.value).toEqual({ shard: 3, bucket: 1, waitedMs: 12, grantedAtMs: 1_700_000_000_000 });
	});

	test("with a secret, sends Authorization: Bearer <secret> and the token in X-Bot-Token", async () => {
		const { requests, wait } = setUp({ secret: "s3cret" });
		void wait();
		await settle();
		expect(requests[0]?.headers.get("authorization")).toBe("Bearer s3cret");
		expect(requests[0]?.headers.get("x-bot-token")).toBe(token);
	});

	test("a twilight-style grant without fields, or with no JSON at all, is still a grant", async () => {
		const { requests, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(200, { message: "You're free to connect now! :)" });
		await settle();
		expect(result.value).toEqual({});
	});

	test("rejects bad arguments before any request, including a zero timeout that would loop", async () => {
		const { requests, wait } = setUp({ attemptTimeoutMs: 0 });
		await expect(wait()).rejects.toThrow(/attemptTimeoutMs/);
		await expect(setUp().wait(-1)).rejects.toThrow(RangeError);
		expect(requests).toHaveLength(0);
	});
});

describe("retries", () => {
	test("503 is retried after Retry-After or the jittered backoff, whichever is longer, doubling per failure", async () => {
		const { requests, delays, retries, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(503, errorBody("queue_unavailable"), { "retry-after": "1" });
		await settle();
		// Failure 1: backoff 500-1000 ms (750 at the middle), Retry-After 1000 ms: 1000.
		delays.elapse(1000);
		await settle();
		requests[1]?.fail();
		await settle();
		// Failure 2: a network error, backoff 1000-2000 ms: 1500.
		delays.elapse(1500);
		await settle();
		requests[2]?.respond(503, errorBody("queue_overloaded"), { "retry-after": "5" });
		await settle();
		delays.elapse(5000);
		await settle();
		requests[3]?.respond(200, grantBody);
		await settle();
		expect(result.value).toMatchObject({ shard: 3 });
		expect(requests).toHaveLength(4);
		expect(retries.map(({ reason, delayMs }) => [reason, delayMs])).toEqual([
			["HTTP 503 queue_unavailable", 1000],
			["TypeError", 1500],
			["HTTP 503 queue_overloaded", 5000],
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

	test("a short 429 Retry-After is waited out; retry_after_ms in the body wins over the header", async () => {
		const { requests, delays, wait } = setUp();
		const result = track(wait());
		await settle();
		requests[0]?.respond(429, { ...errorBody("rate_limited"), retry_after_ms: 2500 }, { "retry-after": "3" });
		await settle();
		expect(delays.pending.map((delay) => delay.ms)).toContain(2500);
		delays.elapse(2500);
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
		delays.elapse(10_800_000);
		await settle();
		expect(requests).toHaveLength(2);
	});

	test.each([
		[400, "invalid_shard"],
		[401, "invalid_token"],
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

describe("the discord.js throttler", () => {
	function setUpThrottler() {
		const { fetch, requests } = fakeFetch();
		const delays = fakeDelays();
		const refusals: string[] = [];
		const throttler = new QueueIdentifyThrottler({
			url,
			token,
			fetch,
			delay: delays.delay,
			onRefusal: (error, shardId) => refusals.push(`${shardId} ${error.code}`),
		});
		return { requests, delays, refusals, throttler };
	}

	// @discordjs/ws 2 answers a rejected wait by reconnecting and also sending an IDENTIFY without a grant.
	test("never rejects on a refusal: it reports it and asks again after backoffMaxMs", async () => {
		const { requests, delays, refusals, throttler } = setUpThrottler();
		const result = track(throttler.waitForIdentify(2, new AbortController().signal));
		await settle();
		requests[0]?.respond(401, errorBody("invalid_token"));
		await settle();
		expect(refusals).toEqual(["2 invalid_token"]);
		delays.elapse(30_000);
		await settle();
		requests[1]?.respond(200, grantBody);
		await settle();
		expect(result).toEqual({ settled: true, value: undefined });
	});

	test("a long 429 (the daily budget reserve) is reported, then waited out before asking again", async () => {
		const { requests, delays, refusals, throttler } = setUpThrottler();
		const result = track(throttler.waitForIdentify(2, new AbortController().signal));
		await settle();
		requests[0]?.respond(429, { ...errorBody("budget_reserve_reached"), retry_after_ms: 7_200_000 });
		await settle();
		expect(refusals).toEqual(["2 budget_reserve_reached"]);
		delays.elapse(7_200_000);
		await settle();
		expect(requests).toHaveLength(2);
		expect(result.settled).toBe(false);
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
