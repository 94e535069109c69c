import { describe, expect, it, vi } from "vitest";
import { fakeDiscord, gatewayBotBody } from "../support/discord-fake";
import { intervalMs } from "../support/queue";
import { call, type GrantBody, queueStatusOf, readsRefusals, uniqueQueue } from "../support/worker";

describe("the grant route (tokenless queues, MAX_CONCURRENCY=4)", () => {
	it("answers a grant with the reference's message and the grant's details", async () => {
		const before = Date.now();
		const response = await call(`/${uniqueQueue()}?shard=7`);
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toMatch(/^application\/json/);
		const body = await response.json<GrantBody>();
		expect(body).toEqual({
			message: "You're free to connect now! :)",
			shard: 7,
			bucket: 3,
			waited_ms: 0,
			granted_at: expect.any(Number),
		});
		expect(body.granted_at).toBeGreaterThanOrEqual(before);
		expect(body.granted_at).toBeLessThanOrEqual(Date.now());
	});

	it("serves / as the queue named default, bucket 0 when no shard is given", async () => {
		const response = await call("/");
		expect(await response.json()).toEqual({
			message: "You're free to connect now! :)",
			bucket: 0,
			waited_ms: expect.any(Number),
			granted_at: expect.any(Number),
		});
	});

	it.each(["POST", "PUT", "DELETE", "PATCH"])("grants %s requests too, ignoring the body", async (method) => {
		const response = await call(`/${uniqueQueue()}?shard=1`, { method, body: "ignored", headers: { "x-any": "1" } });
		expect(response.status).toBe(200);
	});

	it("treats /{queue}/ as /{queue} and spaces grants of one bucket by the interval", async () => {
		const queue = uniqueQueue();
		const first = await (await call(`/${queue}/?shard=0`)).json<GrantBody>();
		const second = await (await call(`/${queue}?shard=4`)).json<GrantBody>();
		expect(second.bucket).toBe(0);
		expect(second.granted_at - first.granted_at).toBeGreaterThanOrEqual(intervalMs);
	});

	it("answers 409 to a request that reads refusals whose shard was requested again, and serves the newer one", async () => {
		const queue = uniqueQueue();
		await call(`/${queue}?shard=0`);
		const older = call(`/${queue}?shard=4`, { headers: readsRefusals });
		await vi.waitFor(async () => expect((await queueStatusOf(queue)).waiting).toBe(1));
		const newer = call(`/${queue}?shard=4`);
		const superseded = await older;
		expect(superseded.status).toBe(409);
		expect(await superseded.json()).toMatchObject({ error: "superseded" });
		expect((await newer).status).toBe(200);
	});

	it("keeps queues apart: the same shard in two queues is granted in both at once", async () => {
		const [a, b] = await Promise.all([call(`/${uniqueQueue()}?shard=0`), call(`/${uniqueQueue()}?shard=0`)]);
		const [grantA, grantB] = [await a.json<GrantBody>(), await b.json<GrantBody>()];
		expect(grantA.waited_ms + grantB.waited_ms).toBe(0);
	});
});

describe("bot-bound queues", () => {
	it("learn max_concurrency from Discord with the request's token", async () => {
		const discord = fakeDiscord({ body: gatewayBotBody(16) });
		const queue = uniqueQueue();
		const responses = await Promise.all(
			[0, 5, 15].map((shard) => call(`/${queue}?shard=${shard}`, { headers: { authorization: "Bot abc.def" } })),
		);
		const bodies = await Promise.all(responses.map((response) => response.json<GrantBody>()));
		expect(bodies.map((body) => [body.bucket, body.waited_ms])).toEqual([
			[0, 0],
			[5, 0],
			[15, 0],
		]);
		expect(discord).toHaveBeenCalledTimes(1);
	});

	it("answer 401 when Discord rejects the token, without echoing it", async () => {
		fakeDiscord({ status: 401, body: { message: "401: Unauthorized" } });
		const response = await call(`/${uniqueQueue()}?shard=0`, { headers: { authorization: "Bot rejected.token" } });
		expect(response.status).toBe(401);
		const text = await response.text();
		expect(JSON.parse(text)).toMatchObject({ error: "invalid_token" });
		expect(text).not.toContain("rejected.token");
	});
});

describe("errors", () => {
	it.each([
		["/a/b", 400, "invalid_queue_name"],
		["/_private", 400, "invalid_queue_name"],
		["/.env", 400, "invalid_queue_name"],
		[`/${"x".repeat(65)}`, 400, "invalid_queue_name"],
		["/q%2Fx", 400, "invalid_queue_name"],
		["/q?shard=-1", 400, "invalid_shard"],
		["/q?shard=abc", 400, "invalid_shard"],
		["/q?shard=1&shard=2", 400, "invalid_shard"],
		["/q?shard=4294967296", 400, "invalid_shard"],
		["/_/", 404, "not_found"],
		["/_/queues", 404, "not_found"],
	])("%s → %i %s, as JSON", async (path, status, error) => {
		const response = await call(path);
		expect(response.status).toBe(status);
		expect(response.headers.get("content-type")).toBe("application/json");
		const body = await response.json<{ error: string; message: string }>();
		expect(body.error).toBe(error);
		expect(body.message).toEqual(expect.any(String));
	});

	it("names the parameter of a bad shard", async () => {
		expect(await (await call("/q?shard=0x10")).json()).toMatchObject({ parameter: "shard" });
	});

	it("rejects a Bot authorization without a token before touching a queue", async () => {
		const discord = fakeDiscord({ body: gatewayBotBody(1) });
		const response = await call("/q", { headers: { authorization: "Bot " } });
		expect(response.status).toBe(401);
		expect(await response.json()).toMatchObject({ error: "invalid_token" });
		expect(discord).not.toHaveBeenCalled();
	});
});

describe("GET /_/health", () => {
	it("answers 200 JSON without taking a slot", async () => {
		const response = await call("/_/health");
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ status: "ok" });
		expect((await call("/_/health", { method: "HEAD" })).status).toBe(200);
	});

	it("answers 405 to other methods", async () => {
		const response = await call("/_/health", { method: "POST" });
		expect(response.status).toBe(405);
		expect(response.headers.get("allow")).toBe("GET, HEAD");
		expect(await response.json()).toMatchObject({ error: "method_not_allowed" });
	});
});
