/** `npm run serve` on a free port with its own state folder: the HTTP contract, pacing, vars from the environment, logs. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../tools/self-host-build.ts";
import { type SelfHostServer, startSelfHost } from "../tools/self-host-server.ts";

const intervalMs = 400;
let server: SelfHostServer;
beforeAll(async () => {
	server = await startSelfHost({ vars: { MAX_CONCURRENCY: "2", IDENTIFY_INTERVAL_MS: String(intervalMs) } });
});
afterAll(async () => {
	await server?.stop();
});

interface Grant {
	message: string;
	shard?: number;
	bucket: number;
	waited_ms: number;
	granted_at: number;
}

async function grant(path: string, init?: RequestInit): Promise<Grant> {
	const response = await fetch(`${server.url}${path}`, init);
	expect(response.status).toBe(200);
	return (await response.json()) as Grant;
}

describe("the HTTP contract", () => {
	it("answers the health route", async () => {
		const response = await fetch(`${server.url}/_/health`);
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ status: "ok" });
	});

	it("grants any method on any queue path with the reference's message", async () => {
		expect(await grant("/contract-a?shard=3")).toMatchObject({
			message: "You're free to connect now! :)",
			shard: 3,
			bucket: 1,
			waited_ms: 0,
		});
		expect(await grant("/contract-b/?shard=4", { method: "POST", body: "ignored" })).toMatchObject({ bucket: 0 });
		expect(await grant("/")).not.toHaveProperty("shard");
	});

	it("refuses bad shards, queue names, methods and reserved paths with their codes", async () => {
		const cases: [string, RequestInit, number, string][] = [
			["/contract-c?shard=abc", {}, 400, "invalid_shard"],
			["/_hidden?shard=1", {}, 400, "invalid_queue_name"],
			["/_/nothing-here", {}, 404, "not_found"],
			["/_/health", { method: "POST" }, 405, "method_not_allowed"],
		];
		for (const [path, init, status, error] of cases) {
			const response = await fetch(`${server.url}${path}`, init);
			expect({ path, status: response.status }).toEqual({ path, status });
			expect(await response.json()).toMatchObject({ error });
		}
	});

	it("answers 409 to a shard's older waiting request when a newer one takes its place, if it reads refusals", async () => {
		await grant("/contract-d?shard=0");
		const older = fetch(`${server.url}/contract-d?shard=2`, { headers: { "gateway-queue-refusals": "json" } });
		await new Promise((resolve) => setTimeout(resolve, 100));
		const newer = grant("/contract-d?shard=2");
		const olderResponse = await older;
		expect(olderResponse.status).toBe(409);
		expect(await olderResponse.json()).toMatchObject({ error: "superseded" });
		expect((await newer).shard).toBe(2);
	});

	it("answers a superseded request that reads no status nothing: it stays open, unanswered", async () => {
		await grant("/contract-e?shard=0");
		const client = new AbortController();
		let answered = false;
		const older = fetch(`${server.url}/contract-e?shard=2`, { signal: client.signal }).then(
			() => {
				answered = true;
			},
			() => undefined,
		);
		await new Promise((resolve) => setTimeout(resolve, 100));
		expect((await grant("/contract-e?shard=2")).shard).toBe(2);
		await new Promise((resolve) => setTimeout(resolve, 500));
		expect(answered).toBe(false);
		client.abort();
		await older;
	});

	it("serves the status of a queue", async () => {
		const response = await fetch(`${server.url}/_/queues/contract-a`);
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({ queue: "contract-a", max_concurrency: 2, interval_ms: intervalMs });
	});

	it("serves the dashboard with its script inline, from the text module beside the bundle", async () => {
		const response = await fetch(`${server.url}/_/dashboard/contract-a`);
		expect(response.status).toBe(200);
		const script = await readFile(join(projectRoot, "src/edge/dashboard/script.browser.js"), "utf8");
		expect(await response.text()).toContain(`<script>${script}</script>`);
	});
});

describe("pacing", () => {
	it("paces each bucket on its own: grants in order, one interval apart, no bucket waiting for another", async () => {
		const grants = await Promise.all([0, 1, 2, 3, 4, 5].map((shard) => grant(`/pacing?shard=${shard}`)));
		for (const bucket of [0, 1]) {
			const line = grants.filter((g) => g.bucket === bucket).sort((a, b) => a.granted_at - b.granted_at);
			expect(line.map((g) => g.shard)).toEqual(bucket === 0 ? [0, 2, 4] : [1, 3, 5]);
			for (let index = 1; index < line.length; index++) {
				expect((line[index]?.granted_at ?? 0) - (line[index - 1]?.granted_at ?? 0)).toBeGreaterThanOrEqual(intervalMs);
			}
		}
		// Both buckets' first grants come before either bucket's second one.
		const firstRound = grants.filter((g) => g.shard === 0 || g.shard === 1).map((g) => g.granted_at);
		const secondRound = grants.filter((g) => g.shard === 2 || g.shard === 3).map((g) => g.granted_at);
		expect(Math.max(...firstRound)).toBeLessThan(Math.min(...secondRound));
	});
});

describe("configuration from the environment", () => {
	it("takes vars set in the environment and wrangler.toml's defaults for the others", async () => {
		// MAX_CONCURRENCY=2 from the environment (wrangler.toml says 1) ...
		expect((await grant("/config-a?shard=5")).bucket).toBe(1);
		// ... and MAX_QUEUE_NAME_LENGTH from wrangler.toml: 64.
		expect((await fetch(`${server.url}/${"q".repeat(64)}?shard=0`)).status).toBe(200);
		const tooLong = await fetch(`${server.url}/${"q".repeat(65)}?shard=0`);
		expect(tooLong.status).toBe(400);
	});
});

describe("logs", () => {
	it("writes JSON lines only to stdout: its own, and the Worker's lines of grants", async () => {
		await grant("/logs?shard=7");
		const lines = server.stdoutLines().map((line) => JSON.parse(line) as Record<string, unknown>);
		expect(lines.find((line) => line.event === "self_host_listening")).toMatchObject({
			address: `127.0.0.1:${server.port}`,
		});
		expect(lines).toContainEqual({
			event: "grants",
			queue: "logs",
			granted: 1,
			buckets: [1],
			shards: [7],
			waited_ms: [0],
		});
	});
});
