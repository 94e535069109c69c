/**
 * The by-hand check, scripted: `wrangler dev` with MAX_CONCURRENCY=4 and
 * IDENTIFY_INTERVAL_MS=500, then 12 shards requesting at once. Prints each
 * bucket's grants and spacing and the batch's makespan (from the server's
 * `granted_at`); exits non-zero if any bucket's spacing is below the interval.
 *
 *   node scripts/burst.ts [shards=12] [maxConcurrency=4] [intervalMs=500]
 */
import { startDevServer } from "./dev-server.ts";

const [shards = 12, maxConcurrency = 4, intervalMs = 500] = process.argv.slice(2).map(Number);
const server = await startDevServer({
	MAX_CONCURRENCY: String(maxConcurrency),
	IDENTIFY_INTERVAL_MS: String(intervalMs),
});
try {
	const queue = `burst-${Date.now()}`;
	const grants = await Promise.all(
		Array.from({ length: shards }, async (_, shard) => {
			const response = await fetch(`${server.url}/${queue}?shard=${shard}`);
			if (!response.ok) throw new Error(`shard ${shard}: HTTP ${response.status} ${await response.text()}`);
			return (await response.json()) as { shard: number; bucket: number; granted_at: number };
		}),
	);
	const firstMs = Math.min(...grants.map((grant) => grant.granted_at));
	let smallestSpacingMs = Number.POSITIVE_INFINITY;
	for (let bucket = 0; bucket < maxConcurrency; bucket++) {
		const times = grants
			.filter((grant) => grant.bucket === bucket)
			.sort((a, b) => a.granted_at - b.granted_at)
			.map((grant) => ({ shard: grant.shard, atMs: grant.granted_at - firstMs }));
		const spacings = times.slice(1).map((time, index) => time.atMs - (times[index]?.atMs ?? 0));
		smallestSpacingMs = Math.min(smallestSpacingMs, ...spacings);
		const line = times.map((time) => `shard ${time.shard} @ ${time.atMs} ms`).join(", ");
		console.log(`bucket ${bucket}: ${line}  (spacing ${spacings.join(", ")} ms)`);
	}
	const makespanMs = Math.max(...grants.map((grant) => grant.granted_at)) - firstMs;
	const legalMinimumMs = (Math.ceil(shards / maxConcurrency) - 1) * intervalMs;
	console.log(
		`makespan ${makespanMs} ms (legal minimum ${legalMinimumMs} ms); smallest spacing ${smallestSpacingMs} ms`,
	);
	if (smallestSpacingMs < intervalMs) {
		console.error(`FAIL: a bucket was granted twice within ${intervalMs} ms`);
		process.exitCode = 1;
	}
} finally {
	await server.stop();
}
