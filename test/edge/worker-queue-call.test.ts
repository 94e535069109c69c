import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import app from "../../src/edge/app";
import type { AcquireRequest, AcquireResult } from "../../src/object/rpc";
import { track } from "../support/queue";
import { envWithStandIn as envWithQueue, getByNameOf, readsRefusals } from "../support/worker";

/** How many stubs the Worker asked for. */
const stubsMade = (queue: Env) => getByNameOf(queue).mock.calls.length;

const grant: AcquireResult = { ok: true, shard: 1, bucket: 1, waitedMs: 0, grantedAtMs: 1 };

const request = (init?: RequestInit) => new Request("http://queue.test/q?shard=1", init);

describe("the Worker's call to the queue object", () => {
	it("calls the object again, on a fresh stub and with the same ticket, when it was reset: the client sees a grant", async () => {
		const reset = Object.assign(new Error("Network connection lost."), { retryable: true, durableObjectReset: true });
		const tickets: string[] = [];
		const acquire = vi.fn(async (sent: AcquireRequest): Promise<AcquireResult> => {
			tickets.push(sent.ticket);
			if (tickets.length < 3) throw reset;
			return grant;
		});
		const queue = envWithQueue({ acquire });
		for (const headers of [{}, readsRefusals]) {
			tickets.length = 0;
			const stubsBefore = stubsMade(queue);
			const response = await app.fetch(request({ headers }), queue);
			expect(response.status).toBe(200);
			expect(new Set(tickets).size).toBe(1);
			expect(tickets).toHaveLength(3);
			expect(stubsMade(queue) - stubsBefore).toBe(3);
		}
	});

	it("answers a client that reads refusals 429 with Retry-After and the budget figures at the daily reserve", async () => {
		const budget = { total: 1000, remaining: 50, reserve: 50, resetAtMs: 1_800_000_000_000 };
		const refusal: AcquireResult = { ok: false, error: "budget_reserve_reached", retryAfterMs: 7_200_500, budget };
		const response = await app.fetch(
			request({ headers: readsRefusals }),
			envWithQueue({ acquire: async () => refusal }),
		);
		expect(response.status).toBe(429);
		expect(response.headers.get("retry-after")).toBe("7201");
		expect(await response.json()).toEqual({
			error: "budget_reserve_reached",
			message: expect.stringContaining("reserve"),
			retry_after_ms: 7_200_500,
			budget: { total: 1000, remaining: 50, reserve: 50, reset_at: 1_800_000_000_000 },
		});
	});

	it.each<[string, AcquireResult]>([
		["a full queue", { ok: false, error: "overloaded" }],
		[
			"the budget's reserve",
			{
				ok: false,
				error: "budget_reserve_reached",
				retryAfterMs: 1000,
				budget: { total: 1, remaining: 1, reserve: 1, resetAtMs: 1 },
			},
		],
	])("holds a client that reads no refusal at %s, asking the object again until it grants", async (_, refused) => {
		const acquire = vi.fn<(sent: AcquireRequest) => Promise<AcquireResult>>();
		acquire.mockResolvedValueOnce(refused).mockResolvedValueOnce(grant);
		const response = await app.fetch(request(), envWithQueue({ acquire }));
		expect(response.status).toBe(200);
		expect(acquire).toHaveBeenCalledTimes(2);
	});

	it("gives a client that reads refusals a 503 after WAIT_TIMEOUT_MS, and gives the place up", async () => {
		const cancel = vi.fn(async () => true);
		const hung = envWithQueue({ acquire: () => new Promise(() => {}), cancel }, { WAIT_TIMEOUT_MS: "1000" });
		const response = await app.fetch(request({ headers: readsRefusals }), hung);
		expect(response.status).toBe(503);
		expect(response.headers.get("retry-after")).toBe("1");
		expect(await response.json()).toMatchObject({ error: "queue_timeout" });
		expect(cancel).toHaveBeenCalledTimes(1);
	});

	it("calls the object again after WAIT_TIMEOUT_MS for a client that reads no refusal, keeping its place", async () => {
		const cancel = vi.fn(async () => true);
		const tickets: string[] = [];
		const acquire = (sent: AcquireRequest) => {
			tickets.push(sent.ticket);
			return tickets.length === 1 ? new Promise<AcquireResult>(() => {}) : Promise.resolve(grant);
		};
		const response = await app.fetch(request(), envWithQueue({ acquire, cancel }, { WAIT_TIMEOUT_MS: "1000" }));
		expect(response.status).toBe(200);
		expect(tickets).toHaveLength(2);
		expect(tickets[1]).toBe(tickets[0]);
		expect(cancel).not.toHaveBeenCalled();
	});

	it("answers a superseded client that reads no refusal nothing while it stays, and 408 once it left", async () => {
		// The Worker's timers on a fake clock: ten minutes of holding pass at once.
		vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
		try {
			const client = new AbortController();
			const acquire = vi.fn(async (): Promise<AcquireResult> => ({ ok: false, error: "superseded" }));
			const response = track(Promise.resolve(app.fetch(request({ signal: client.signal }), envWithQueue({ acquire }))));
			await vi.waitFor(() => expect(acquire).toHaveBeenCalled());
			await vi.advanceTimersByTimeAsync(10 * 60_000);
			expect(response.settled()).toBe(false);
			client.abort();
			expect((await response).status).toBe(408);
			expect(acquire).toHaveBeenCalledTimes(1);
		} finally {
			vi.useRealTimers();
		}
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

	it("hands a grant back when its client left before the answer came: nobody IDENTIFYs with it", async () => {
		let acquired: AcquireRequest | undefined;
		let settle: (result: AcquireResult) => void = () => {};
		const handBack = vi.fn(async (_ticket: string) => true);
		const queue = envWithQueue({
			acquire: (sent) => {
				acquired = sent;
				return new Promise((resolve) => {
					settle = resolve;
				});
			},
			// Too late: the object had granted the request already.
			cancel: async () => false,
			handBack,
		});
		const client = new AbortController();
		const response = app.fetch(request({ signal: client.signal }), queue);
		await vi.waitFor(() => expect(acquired).toBeDefined());
		client.abort();
		settle(grant);
		expect((await response).status).toBe(408);
		await vi.waitFor(() => expect(handBack).toHaveBeenCalledWith(acquired?.ticket));
	});

	it("hands no grant back when the client is still there", async () => {
		const handBack = vi.fn(async () => true);
		const response = await app.fetch(request(), envWithQueue({ acquire: async () => grant, handBack }));
		expect(response.status).toBe(200);
		expect(handBack).not.toHaveBeenCalled();
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
