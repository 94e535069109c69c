/**
 * Under plain workerd the object's alarm fires by itself: the bench's Worker with
 * its timer off (`BENCH_TIMER=off`) grants a second round with no new request.
 */
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type SelfHostServer, startSelfHost } from "../tools/self-host-server.ts";

const intervalMs = 500;
let server: SelfHostServer;
beforeAll(async () => {
	server = await startSelfHost({
		configPath: join(import.meta.dirname, "..", "bench", "worker", "wrangler.toml"),
		vars: { MAX_CONCURRENCY: "1", IDENTIFY_INTERVAL_MS: String(intervalMs), BENCH_TIMER: "off" },
	});
});
afterAll(async () => {
	await server?.stop();
});

test("the alarm grants the bucket's second waiter one interval after the first, with no request in between", async () => {
	const [first, second] = await Promise.all(
		[0, 1].map(async (shard) => {
			const response = await fetch(`${server.url}/alarm?shard=${shard}`);
			expect(response.status).toBe(200);
			return (await response.json()) as { granted_at: number; waited_ms: number };
		}),
	);
	const [earlier, later] = [first, second].sort((a, b) => (a?.granted_at ?? 0) - (b?.granted_at ?? 0));
	expect(later?.waited_ms).toBeGreaterThan(0);
	expect((later?.granted_at ?? 0) - (earlier?.granted_at ?? 0)).toBeGreaterThanOrEqual(intervalMs);
});
