import { env } from "cloudflare:workers";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import app from "../../src/edge/app";
import { uniqueQueue as anyQueue, base, call } from "../support/worker";

const uniqueQueue = () => anyQueue("m");
const secret = "metrics-test-secret-0123456789";

/** Each family's samples by name, as a Prometheus parser reads them. */
async function scrape(response: Response) {
	const families = parsePrometheusTextFormat(await response.text());
	return new Map(families.map((family) => [family.name, family]));
}

// Tokenless queues run with MAX_CONCURRENCY=4 here.
describe("GET /_/metrics/{queue}", () => {
	it("answers the Prometheus text format, every sample labelled with the queue, parsed back by a Prometheus parser", async () => {
		const queue = uniqueQueue();
		for (const shard of [0, 1, 2]) expect((await call(`/${queue}?shard=${shard}`)).status).toBe(200);
		const response = await call(`/_/metrics/${queue}`);
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
		expect(response.headers.get("cache-control")).toBe("no-store");
		const families = await scrape(response);
		expect(families.get("gateway_queue_requests_total")).toMatchObject({
			type: "COUNTER",
			metrics: expect.arrayContaining([{ value: "3", labels: { queue, outcome: "granted" } }]),
		});
		expect(families.get("gateway_queue_max_concurrency")?.metrics).toEqual([{ value: "4", labels: { queue } }]);
		expect(families.get("gateway_queue_identify_interval_seconds")?.metrics).toEqual([
			{ value: "2", labels: { queue } },
		]);
		expect(families.get("gateway_queue_wait_seconds")).toMatchObject({
			type: "HISTOGRAM",
			metrics: [{ buckets: expect.objectContaining({ "0.01": "3", "+Inf": "3" }) }],
		});
		expect(families.get("gateway_queue_waiting_requests")?.metrics).toEqual([{ value: "0", labels: { queue } }]);
		expect(families.get("gateway_queue_grants_handed_back_total")).toMatchObject({
			type: "COUNTER",
			metrics: [{ value: "0", labels: { queue } }],
		});
		// No budget for a queue that knows no bot: no budget series at all.
		expect(families.has("gateway_queue_budget_remaining_starts")).toBe(false);
		for (const family of families.values()) {
			for (const sample of family.metrics) if (sample.labels) expect(sample.labels.queue).toBe(queue);
		}
	});

	it("answers OpenMetrics when the scraper asks for it", async () => {
		const response = await call(`/_/metrics/${uniqueQueue()}`, {
			headers: { accept: "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5" },
		});
		expect(response.headers.get("content-type")).toBe("application/openmetrics-text; version=1.0.0; charset=utf-8");
		// Decoded by hand: workerd warns when .text() reads a body whose type is not text/*.
		expect(new TextDecoder().decode(await response.arrayBuffer()).endsWith("# EOF\n")).toBe(true);
	});

	it("follows the status route's rules: names, methods, query, a bot's own object, the secret", async () => {
		expect((await call("/_/metrics/")).status).toBe(404);
		expect((await call("/_/metrics/a%2Fb")).status).toBe(400);
		expect((await call("/_/metrics/q?x=1")).status).toBe(400);
		expect((await call("/_/metrics/q", { method: "POST" })).status).toBe(405);
		expect((await call("/_/metrics/q", { headers: { "sec-fetch-site": "cross-site" } })).status).toBe(403);
		expect((await call("/_/metrics/q", { method: "HEAD" })).status).toBe(200);

		const queue = uniqueQueue();
		await call(`/${queue}?shard=0`);
		const granted = async (init?: RequestInit) =>
			(await scrape(await call(`/_/metrics/${queue}`, init)))
				.get("gateway_queue_requests_total")
				?.metrics.find((sample) => sample.labels?.outcome === "granted")?.value;
		expect(await granted()).toBe("1");
		// The same name with a bot token is that bot's queue, another object.
		expect(await granted({ headers: { "x-bot-token": "some.bot" } })).toBe("0");

		const guarded = { ...env, QUEUE_SECRET: secret };
		const unauthorized = await app.fetch(new Request(`${base}/_/metrics/${queue}`), guarded);
		expect(unauthorized.status).toBe(401);
		const authorized = await app.fetch(
			new Request(`${base}/_/metrics/${queue}`, { headers: { authorization: `Bearer ${secret}` } }),
			guarded,
		);
		expect(authorized.status).toBe(200);
	});
});
