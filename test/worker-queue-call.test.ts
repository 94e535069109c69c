import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import app from "../src/app";
import type { AcquireRequest, AcquireResult } from "../src/queue";

/** A stand-in for the queue object, to make the Worker's call to it fail, hang or be cancelled. */
function envWithQueue(
	queue: { acquire(request: AcquireRequest): Promise<AcquireResult>; cancel?(ticket: string): Promise<boolean> },
	vars: Partial<Env> = {},
): Env {
	const stub = { cancel: async () => true, ...queue };
	return { ...env, ...vars, GATEWAY_QUEUE: { getByName: () => stub } } as unknown as Env;
}

const request = (init?: RequestInit) => new Request("http://queue.test/q?shard=1", init);

describe("the Worker's call to the queue object", () => {
	it("answers 503 with Retry-After: 1 when the object was reset", async () => {
		const reset = Object.assign(new Error("Network connection lost."), { retryable: true, durableObjectReset: true });
		const response = await app.fetch(request(), envWithQueue({ acquire: () => Promise.reject(reset) }));
		expect(response.status).toBe(503);
		expect(response.headers.get("retry-after")).toBe("1");
		expect(await response.json()).toMatchObject({ error: "queue_unavailable" });
	});

	it("answers 429 with Retry-After and the budget figures when the daily reserve is reached", async () => {
		const budget = { total: 1000, remaining: 50, reserve: 50, reset_at: 1_800_000_000_000 };
		const refusal: AcquireResult = { ok: false, error: "budget_reserve_reached", retryAfterMs: 7_200_500, budget };
		const response = await app.fetch(request(), envWithQueue({ acquire: async () => refusal }));
		expect(response.status).toBe(429);
		expect(response.headers.get("retry-after")).toBe("7201");
		expect(await response.json()).toEqual({
			error: "budget_reserve_reached",
			message: expect.stringContaining("reserve"),
			retry_after_ms: 7_200_500,
			budget: { total: 1000, remaining: 50, reserve: 50, reset_at: 1_800_000_000_000 },
		});
	});

	it("gives up after WAIT_TIMEOUT_MS with a 503, and gives the place up", async () => {
		const cancel = vi.fn(async () => true);
		const hung = envWithQueue({ acquire: () => new Promise(() => {}), cancel }, { WAIT_TIMEOUT_MS: "1000" });
		const response = await app.fetch(request(), hung);
		expect(response.status).toBe(503);
		expect(response.headers.get("retry-after")).toBe("1");
		expect(await response.json()).toMatchObject({ error: "queue_timeout" });
		expect(cancel).toHaveBeenCalledTimes(1);
	});

	it("cancels the waiting place with the request's ticket when the client goes away", async () => {
		let acquired: AcquireRequest | undefined;
		let settle: (result: AcquireResult) => void = () => {};
		const cancel = vi.fn(async (ticket: string) => {
			settle({ ok: false, error: "cancelled" });
			return ticket === acquired?.ticket;
		});
		const queue = envWithQueue({
			acquire: (sent) => {
				acquired = sent;
				return new Promise((resolve) => {
					settle = resolve;
				});
			},
			cancel,
		});
		const client = new AbortController();
		const response = app.fetch(request({ signal: client.signal }), queue);
		await vi.waitFor(() => expect(acquired).toBeDefined());
		client.abort();
		expect((await response).status).toBe(408);
		expect(cancel).toHaveBeenCalledWith(acquired?.ticket);
		expect(await cancel.mock.results[0]?.value).toBe(true);
	});

	it("does not queue a request whose client left before the queue was called", async () => {
		const acquire = vi.fn();
		const client = new AbortController();
		client.abort();
		const response = await app.fetch(request({ signal: client.signal }), envWithQueue({ acquire }));
		expect(response.status).toBe(408);
		expect(acquire).not.toHaveBeenCalled();
	});

	it("answers 500 JSON naming the variable when the configuration is invalid", async () => {
		const acquire = vi.fn();
		const response = await app.fetch(request(), envWithQueue({ acquire }, { IDENTIFY_INTERVAL_MS: "soon" }));
		expect(response.status).toBe(500);
		const body = await response.json<{ error: string; message: string }>();
		expect(body.error).toBe("misconfigured");
		expect(body.message).toContain("IDENTIFY_INTERVAL_MS");
		expect(acquire).not.toHaveBeenCalled();
	});

	it("reports an invalid configuration on /_/health too", async () => {
		const response = await app.fetch(new Request("http://queue.test/_/health"), { ...env, MAX_CONCURRENCY: "0" });
		expect(response.status).toBe(500);
		expect(await response.json()).toMatchObject({ error: "misconfigured" });
	});

	it("answers an unexpected failure with 500 JSON that reveals nothing internal", async () => {
		const broken = {
			...env,
			GATEWAY_QUEUE: {
				getByName: () => {
					throw new Error("secret internals");
				},
			},
		} as unknown as Env;
		const response = await app.fetch(request(), broken);
		expect(response.status).toBe(500);
		const text = await response.text();
		expect(JSON.parse(text)).toEqual({ error: "internal", message: "Unexpected error." });
		expect(text).not.toContain("secret internals");
	});

	it("passes the bot token of the request, or else DISCORD_TOKEN, to the object", async () => {
		const seen: (string | undefined)[] = [];
		const grant: AcquireResult = { ok: true, shard: 1, bucket: 1, waitedMs: 0, grantedAtMs: 1 };
		const queue = envWithQueue(
			{
				acquire: async (sent) => {
					seen.push(sent.token);
					return grant;
				},
			},
			{ DISCORD_TOKEN: "from.secret" } as Partial<Env>,
		);
		await app.fetch(request({ headers: { authorization: "Bot from.header" } }), queue);
		await app.fetch(request(), queue);
		expect(seen).toEqual(["from.header", "from.secret"]);
	});
});
