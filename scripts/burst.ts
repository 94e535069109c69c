/**
 * The by-hand check, scripted: `wrangler dev` with MAX_CONCURRENCY=4 and
 * IDENTIFY_INTERVAL_MS=500, then 12 shards requesting at once. Prints each
 * bucket's grants and the batch's figures (from the server's `granted_at`, by
 * the bench's arithmetic, bench/analysis.ts); exits non-zero if any bucket's
 * spacing is below the interval.
 *
 *   node scripts/burst.ts [shards=12] [maxConcurrency=4] [intervalMs=500]
 */
import { batchFigures, byBucket, distribution, type GrantRecord } from "../bench/analysis.ts";
import { startDevServer } from "../tools/dev-server.ts";

const [shards = 12, maxConcurrency = 4, intervalMs = 500] = process.argv.slice(2).map(Number);
const server = await startDevServer({
	MAX_CONCURRENCY: String(maxConcurrency),
	IDENTIFY_INTERVAL_MS: String(intervalMs),
});
try {
	const queue = `burst-${Date.now()}`;
	const grants = await Promise.all(
		Array.from({ length: shards }, async (_, shard): Promise<GrantRecord> => {
			const response = await fetch(`${server.url}/${queue}?shard=${shard}`);
			if (!response.ok) throw new Error(`shard ${shard}: HTTP ${response.status} ${await response.text()}`);
			const body = (await response.json()) as { shard: number; bucket: number; granted_at: number };
			return { shard: body.shard, bucket: body.bucket, grantedAtMs: body.granted_at };
		}),
	);
	const firstMs = Math.min(...grants.map((grant) => grant.grantedAtMs));
	const lines = byBucket(grants);
	for (const bucket of [...lines.keys()].sort((a, b) => a - b)) {
		const line = (lines.get(bucket) ?? []).map((grant) => `shard ${grant.shard} @ ${grant.grantedAtMs - firstMs} ms`);
		console.log(`bucket ${bucket}: ${line.join(", ")}`);
	}
	const figures = batchFigures(grants, maxConcurrency, intervalMs);
	const lateness = distribution(figures.latenessMs);
	console.log(
		`makespan ${figures.makespanMs} ms (legal minimum ${figures.legalMinimumMs} ms); ` +
			`smallest spacing ${figures.smallestSpacingMs ?? "-"} ms; ` +
			`lateness after the interval p50 ${lateness.p50} ms, p99 ${lateness.p99} ms, max ${lateness.max} ms`,
	);
	if (figures.smallestSpacingMs !== null && figures.smallestSpacingMs < intervalMs) {
		console.error(`FAIL: a bucket was granted twice within ${intervalMs} ms`);
		process.exitCode = 1;
	}
} finally {
	await server.stop();
}
