import { describe, expect, it, vi } from "vitest";
import script from "../../src/edge/dashboard/script.browser.js";
import { fakeDiscord, gatewayBotBody } from "../support/discord-fake";
import { call, queueStatusOf as statusOf, uniqueQueue } from "../support/worker";

// MAX_CONCURRENCY=4 and a 2 s interval here: shard 4 waits behind shard 0.
describe("GET /_/queues/{queue}", () => {
	it("answers the queue's status as JSON, not cached", async () => {
		const queue = uniqueQueue();
		const response = await call(`/_/queues/${queue}`);
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toMatch(/^application\/json/);
		expect(response.headers.get("cache-control")).toBe("no-store");
		expect(await response.json()).toMatchObject({ queue, waiting: 0, buckets: [], budget: null });
	});

	it("shows a held request of the queue route, and takes no slot", async () => {
		const queue = uniqueQueue();
		await call(`/${queue}?shard=0`);
		const held = call(`/${queue}?shard=4`);
		await vi.waitFor(async () => expect((await statusOf(queue)).waiting).toBe(1));
		const status = await statusOf(queue);
		expect(status).toMatchObject({ max_concurrency: 4, concurrency_source: "var", totals: { granted: 1 } });
		expect(status.buckets).toEqual([expect.objectContaining({ bucket: 0, waiting: 1, shards: [4] })]);
		expect((await held).status).toBe(200);
		expect((await statusOf(queue)).totals.granted).toBe(2);
	});

	it("reaches a bot's queue with its token, as the queue route does, without calling Discord", async () => {
		const discord = fakeDiscord({ body: gatewayBotBody(16) });
		const queue = uniqueQueue();
		const headers = { authorization: "Bot abc.def" };
		await call(`/${queue}?shard=0`, { headers });
		const held = call(`/${queue}?shard=16`, { headers });
		await vi.waitFor(async () => expect((await statusOf(queue, { headers })).waiting).toBe(1));
		expect(await statusOf(queue, { headers })).toMatchObject({ max_concurrency: 16, concurrency_source: "discord" });
		expect(await statusOf(queue)).toMatchObject({ waiting: 0, totals: { granted: 0 } });
		expect(await statusOf(uniqueQueue(), { headers: { authorization: "Bot other.bot" } })).toMatchObject({
			concurrency_source: "unknown",
		});
		await held;
		expect(discord).toHaveBeenCalledTimes(1);
	});

	it.each([
		["/_/queues/a/b", 400, "invalid_queue_name"],
		["/_/queues/_x", 400, "invalid_queue_name"],
		["/_/queues/q%2Fx", 400, "invalid_queue_name"],
		["/_/queues/", 404, "not_found"],
		["/_/queues", 404, "not_found"],
	])("%s → %i %s", async (path, status, error) => {
		const response = await call(path);
		expect(response.status).toBe(status);
		expect(await response.json()).toMatchObject({ error });
	});

	it("answers 405 to methods other than GET and HEAD, and 401 to a malformed token", async () => {
		const response = await call("/_/queues/q", { method: "POST" });
		expect(response.status).toBe(405);
		expect(response.headers.get("allow")).toBe("GET, HEAD");
		expect((await call("/_/queues/q", { method: "HEAD" })).status).toBe(200);
		expect((await call("/_/queues/q", { headers: { authorization: "Bot " } })).status).toBe(401);
	});
});

describe("GET /_/dashboard/{queue}", () => {
	it("answers a self-contained page that reads the queue's status route", async () => {
		const response = await call("/_/dashboard/mybot");
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toMatch(/^text\/html/);
		expect(response.headers.get("content-security-policy")).toContain("default-src 'none'");
		expect(response.headers.get("content-security-policy")).toContain("connect-src 'self'");
		const page = await response.text();
		expect(page).toContain('data-status-url="/_/queues/mybot"');
		expect(page).toContain('name="viewport"');
		expect(page).toContain("prefers-color-scheme: dark");
		expect(page).not.toMatch(/(src|href)="(https?:)?\/\//);
	});

	it("lets the page's data: icon through its policy, so the browser asks for no /favicon.ico (a queue of that name)", async () => {
		const response = await call("/_/dashboard/mybot");
		expect(await response.text()).toContain('<link rel="icon" href="data:,">');
		expect(response.headers.get("content-security-policy")).toContain("img-src 'self' data:");
	});

	it("inlines script.browser.js as its text, the one script the policy allows", async () => {
		const response = await call("/_/dashboard/mybot");
		const page = await response.text();
		// The Text module rule gives the file's text, not a module.
		expect(script).toMatch(/^\/\/ @ts-check\n/);
		expect(script).toContain("async function poll()");
		expect(script).not.toMatch(/<\/script/i);
		expect(page).toContain(`<script>${script}</script>`);
		expect(page.match(/<script/g)).toHaveLength(1);
		expect(response.headers.get("content-security-policy")).toContain("script-src 'unsafe-inline'");
	});

	it("validates the queue name and token as the other routes do", async () => {
		expect((await call("/_/dashboard/a/b")).status).toBe(400);
		expect((await call("/_/dashboard/")).status).toBe(404);
		expect((await call("/_/dashboard/q", { method: "POST" })).status).toBe(405);
		expect((await call("/_/dashboard/q", { headers: { authorization: "Bot " } })).status).toBe(401);
	});
});
