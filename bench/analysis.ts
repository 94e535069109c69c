/** The bench's arithmetic: figures of one batch of grants, from the server's `granted_at`. */

export interface GrantRecord {
	shard: number;
	bucket: number;
	/** The server's clock at the grant (`granted_at`). */
	grantedAtMs: number;
}

export interface BatchFigures {
	shards: number;
	maxConcurrency: number;
	intervalMs: number;
	/** Last grant minus first grant. */
	makespanMs: number;
	/** `(ceil(shards / maxConcurrency) - 1) * intervalMs`: all shards asking at once, every grant on time. */
	legalMinimumMs: number;
	/** `makespanMs / legalMinimumMs`; null when the minimum is 0 (one round). */
	makespanRatio: number | null;
	/** `(makespanMs - legalMinimumMs) / rounds after the first`; null with one round. */
	meanLatenessPerRoundMs: number | null;
	/** The smallest gap between two grants of one bucket; null when no bucket granted twice. */
	smallestSpacingMs: number | null;
	/**
	 * The worst bucket's own makespan over its own minimum, from its first grant:
	 * the pacing alone, without the spread of the first grants. Null when no bucket granted twice.
	 */
	worstBucketRatio: number | null;
	/** When the last bucket's first grant came, after the very first grant (requests arriving over time). */
	startSpreadMs: number;
	/** For each grant after the first in its bucket: how long after its due time (previous grant + interval). */
	latenessMs: number[];
	/**
	 * The same from each bucket's third grant on: locally the round after the first
	 * grants comes late while the one workerd thread still accepts the burst of requests.
	 */
	steadyLatenessMs: number[];
	/** Grants of a bucket that did not come in increasing shard order (only meaningful when shards asked in order). */
	outOfOrder: number;
}

export function batchFigures(grants: GrantRecord[], maxConcurrency: number, intervalMs: number): BatchFigures {
	const times = grants.map((grant) => grant.grantedAtMs);
	const firstMs = Math.min(...times);
	const makespanMs = Math.max(...times) - firstMs;
	const rounds = Math.ceil(grants.length / maxConcurrency) - 1;
	const legalMinimumMs = rounds * intervalMs;
	const latenessMs: number[] = [];
	const steadyLatenessMs: number[] = [];
	let smallestSpacingMs: number | null = null;
	let startSpreadMs = 0;
	let outOfOrder = 0;
	let worstBucketRatio: number | null = null;
	for (const line of byBucket(grants).values()) {
		const bucketFirstMs = line[0]?.grantedAtMs ?? firstMs;
		startSpreadMs = Math.max(startSpreadMs, bucketFirstMs - firstMs);
		if (line.length > 1) {
			const bucketRatio = ((line.at(-1)?.grantedAtMs ?? 0) - bucketFirstMs) / ((line.length - 1) * intervalMs);
			worstBucketRatio = Math.max(worstBucketRatio ?? 0, bucketRatio);
		}
		for (let index = 1; index < line.length; index++) {
			const [previous, grant] = [line[index - 1] as GrantRecord, line[index] as GrantRecord];
			const spacingMs = grant.grantedAtMs - previous.grantedAtMs;
			smallestSpacingMs = smallestSpacingMs === null ? spacingMs : Math.min(smallestSpacingMs, spacingMs);
			latenessMs.push(spacingMs - intervalMs);
			if (index >= 2) steadyLatenessMs.push(spacingMs - intervalMs);
			if (grant.shard < previous.shard) outOfOrder++;
		}
	}
	return {
		shards: grants.length,
		maxConcurrency,
		intervalMs,
		makespanMs,
		legalMinimumMs,
		makespanRatio: legalMinimumMs > 0 ? makespanMs / legalMinimumMs : null,
		meanLatenessPerRoundMs: rounds > 0 ? (makespanMs - legalMinimumMs) / rounds : null,
		smallestSpacingMs,
		worstBucketRatio,
		startSpreadMs,
		latenessMs,
		steadyLatenessMs,
		outOfOrder,
	};
}

/** Grants per bucket, each bucket's in grant order. */
export function byBucket(grants: GrantRecord[]): Map<number, GrantRecord[]> {
	const lines = new Map<number, GrantRecord[]>();
	for (const grant of [...grants].sort((a, b) => a.grantedAtMs - b.grantedAtMs || a.shard - b.shard)) {
		const line = lines.get(grant.bucket) ?? [];
		line.push(grant);
		lines.set(grant.bucket, line);
	}
	return lines;
}

export interface Distribution {
	count: number;
	p50: number;
	p99: number;
	max: number;
	mean: number;
}

/** Nearest-rank percentiles. */
export function distribution(values: number[]): Distribution {
	const sorted = [...values].sort((a, b) => a - b);
	const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
	const mean = sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length);
	return { count: sorted.length, p50: rank(50), p99: rank(99), max: sorted.at(-1) ?? 0, mean };
}
