/** The bench's arithmetic: figures of one batch of grants, from the server's `granted_at`. */

export interface GrantRecord {
	shard: number;
	bucket: number;
	/** The server's clock at the grant (`granted_at`). */
	grantedAtMs: number;
	/** The server's clock when the request joined the line (`granted_at - waited_ms`), when known. */
	arrivedAtMs?: number;
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
	/**
	 * For each grant after the first in its bucket: how long after its due time, the
	 * previous grant + interval (or its arrival, when known and later).
	 */
	latenessMs: number[];
	/** For each bucket's first grant, when arrivals are known: how long after its arrival. */
	firstLatenessMs: number[];
	/**
	 * The same from each bucket's third grant on: locally the round after the first
	 * grants comes late while the one workerd thread still accepts the burst of requests.
	 */
	steadyLatenessMs: number[];
	/** Grants of a bucket that did not come in increasing shard order (only meaningful when shards asked in order). */
	outOfOrder: number;
	/**
	 * Grants of a bucket made before a request of that bucket that had arrived
	 * earlier (by the server's clock, so a real FIFO violation); 0 when arrivals are unknown.
	 */
	arrivalOrderViolations: number;
	/** Last arrival minus first arrival; null when arrivals are unknown. */
	arrivalSpreadMs: number | null;
	/**
	 * The least possible time from the first arrival to the last grant, given when
	 * each request arrived: each bucket in arrival order, every grant at
	 * max(arrival, previous grant + interval). Null when arrivals are unknown.
	 */
	minimumGivenArrivalsMs: number | null;
	/** (last grant - first arrival) over `minimumGivenArrivalsMs`; null when that is unknown or 0. */
	ratioGivenArrivals: number | null;
	/**
	 * The bucket that granted last (the makespan's): its grants' lateness added up, split at the
	 * end of the intake (the run's last arrival): what it lost while requests still came in, and
	 * after. Null when arrivals are unknown.
	 */
	lastBucketLatenessMs: { whileArriving: number; after: number } | null;
}

/**
 * `intakeEndMs`: when the last request of the run came in, when other queues' requests
 * shared the thread (by default the last arrival of these grants).
 */
export function batchFigures(
	grants: GrantRecord[],
	maxConcurrency: number,
	intervalMs: number,
	intakeEndMs = lastArrivalOf(grants),
): BatchFigures {
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
	const firstLatenessMs: number[] = [];
	let arrivalOrderViolations = 0;
	const arrivalsKnown = grants.every((grant) => grant.arrivedAtMs !== undefined);
	let lastBucket: { lastGrantMs: number; whileArriving: number; after: number } | undefined;
	for (const line of byBucket(grants).values()) {
		const split = { whileArriving: 0, after: 0 };
		const addLateness = (grantedAtMs: number, latenessMs: number) => {
			if (grantedAtMs <= intakeEndMs) split.whileArriving += latenessMs;
			else split.after += latenessMs;
		};
		const first = line[0];
		const bucketFirstMs = first?.grantedAtMs ?? firstMs;
		startSpreadMs = Math.max(startSpreadMs, bucketFirstMs - firstMs);
		if (first?.arrivedAtMs !== undefined) {
			firstLatenessMs.push(first.grantedAtMs - first.arrivedAtMs);
			addLateness(first.grantedAtMs, first.grantedAtMs - first.arrivedAtMs);
		}
		if (line.length > 1) {
			const bucketRatio = ((line.at(-1)?.grantedAtMs ?? 0) - bucketFirstMs) / ((line.length - 1) * intervalMs);
			worstBucketRatio = Math.max(worstBucketRatio ?? 0, bucketRatio);
		}
		let latestArrivalMs = Number.NEGATIVE_INFINITY;
		for (let index = 1; index < line.length; index++) {
			const [previous, grant] = [line[index - 1] as GrantRecord, line[index] as GrantRecord];
			const spacingMs = grant.grantedAtMs - previous.grantedAtMs;
			smallestSpacingMs = smallestSpacingMs === null ? spacingMs : Math.min(smallestSpacingMs, spacingMs);
			const dueMs = Math.max(previous.grantedAtMs + intervalMs, grant.arrivedAtMs ?? Number.NEGATIVE_INFINITY);
			latenessMs.push(grant.grantedAtMs - dueMs);
			addLateness(grant.grantedAtMs, grant.grantedAtMs - dueMs);
			if (index >= 2) steadyLatenessMs.push(grant.grantedAtMs - dueMs);
			if (grant.shard < previous.shard) outOfOrder++;
			latestArrivalMs = Math.max(latestArrivalMs, previous.arrivedAtMs ?? latestArrivalMs);
			if (grant.arrivedAtMs !== undefined && grant.arrivedAtMs < latestArrivalMs) arrivalOrderViolations++;
		}
		const lastGrantMs = line.at(-1)?.grantedAtMs ?? firstMs;
		if (!lastBucket || lastGrantMs > lastBucket.lastGrantMs) lastBucket = { lastGrantMs, ...split };
	}
	const givenArrivals = minimumGivenArrivals(grants, intervalMs);
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
		firstLatenessMs,
		steadyLatenessMs,
		outOfOrder,
		arrivalOrderViolations,
		arrivalSpreadMs: givenArrivals?.arrivalSpreadMs ?? null,
		minimumGivenArrivalsMs: givenArrivals?.minimumMs ?? null,
		ratioGivenArrivals:
			givenArrivals && givenArrivals.minimumMs > 0
				? (Math.max(...times) - givenArrivals.firstArrivalMs) / givenArrivals.minimumMs
				: null,
		lastBucketLatenessMs:
			arrivalsKnown && lastBucket ? { whileArriving: lastBucket.whileArriving, after: lastBucket.after } : null,
	};
}

/**
 * The ideal schedule of these requests given their arrivals (see
 * `BatchFigures.minimumGivenArrivalsMs`); undefined when an arrival is unknown.
 */
function minimumGivenArrivals(
	grants: GrantRecord[],
	intervalMs: number,
): { firstArrivalMs: number; arrivalSpreadMs: number; minimumMs: number } | undefined {
	const arrivals = new Map<number, number[]>();
	for (const { bucket, arrivedAtMs } of grants) {
		if (arrivedAtMs === undefined) return undefined;
		const line = arrivals.get(bucket) ?? [];
		line.push(arrivedAtMs);
		arrivals.set(bucket, line);
	}
	if (arrivals.size === 0) return undefined;
	let firstArrivalMs = Number.POSITIVE_INFINITY;
	let lastArrivalMs = Number.NEGATIVE_INFINITY;
	let idealLastMs = Number.NEGATIVE_INFINITY;
	for (const line of arrivals.values()) {
		line.sort((a, b) => a - b);
		let atMs = Number.NEGATIVE_INFINITY;
		for (const arrivedAtMs of line) atMs = Math.max(arrivedAtMs, atMs + intervalMs);
		firstArrivalMs = Math.min(firstArrivalMs, line[0] ?? firstArrivalMs);
		lastArrivalMs = Math.max(lastArrivalMs, line.at(-1) ?? lastArrivalMs);
		idealLastMs = Math.max(idealLastMs, atMs);
	}
	return { firstArrivalMs, arrivalSpreadMs: lastArrivalMs - firstArrivalMs, minimumMs: idealLastMs - firstArrivalMs };
}

/** The last arrival among these grants (-Infinity when none is known). */
export function lastArrivalOf(grants: GrantRecord[]): number {
	return Math.max(...grants.map((grant) => grant.arrivedAtMs ?? Number.NEGATIVE_INFINITY));
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

/** The figures with each list of lateness as its distribution, for the JSON file. */
export function compactFigures({ latenessMs, steadyLatenessMs, firstLatenessMs, ...kept }: BatchFigures) {
	return {
		...kept,
		latenessMs: distribution(latenessMs),
		steadyLatenessMs: distribution(steadyLatenessMs),
		firstLatenessMs: distribution(firstLatenessMs),
	};
}
