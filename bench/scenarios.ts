/** The bench's scenarios, each against a running server (`wrangler dev` or self-hosted workerd). */

import { loadavg } from "node:os";
import {
	type BatchFigures,
	batchFigures,
	type Distribution,
	distribution,
	type GrantRecord,
	lastArrivalOf,
} from "./analysis.ts";
import { freshQueueName, getJson, requestGrant, sleep, warmUp } from "./client.ts";
import { busiestThreadShare, isolateHeapUsedBytes, sampleThreadsEvery, sampleWorkerd } from "./process.ts";
import type { QueueServer } from "./servers.ts";

export interface StartupRun {
	pacing: "timer" | "alarm only";
	figures: BatchFigures;
	/** workerd's CPU time (user + system, whole process) during the batch, per grant. */
	workerdCpuMsPerGrant: number;
	/** The machine's 1-minute load average as the batch began (other work perturbs the figures). */
	loadAverage: number;
	grants: GrantRecord[];
	/** A goal's case, run again on the same server: each run's figures, this one's first (the goals take their medians). */
	repeats?: RepeatedFigures;
}

export interface RepeatedFigures {
	workerdCpuMsPerGrant: number[];
	worstBucketRatio: (number | null)[];
	makespanRatio: (number | null)[];
	ratioGivenArrivals: (number | null)[];
}

/** `startupRun` `times` times over: the first run, with every run's figures beside it. */
export async function repeatedStartupRun(times: number, ...args: Parameters<typeof startupRun>): Promise<StartupRun> {
	const runs: StartupRun[] = [];
	for (let run = 0; run < times; run++) runs.push(await startupRun(...args));
	const [first] = runs as [StartupRun];
	return {
		...first,
		repeats: {
			workerdCpuMsPerGrant: runs.map((run) => run.workerdCpuMsPerGrant),
			worstBucketRatio: runs.map((run) => run.figures.worstBucketRatio),
			makespanRatio: runs.map((run) => run.figures.makespanRatio),
			ratioGivenArrivals: runs.map((run) => run.figures.ratioGivenArrivals),
		},
	};
}

/** How often the capacity runs sample workerd's threads (reading /proc costs the bench a little CPU). */
const threadSampleEveryMs = 100;

/** Scenario 1 (and the data of 2): `shards` requests at once, each to its own shard. */
export async function startupRun(
	server: QueueServer,
	shards: number,
	maxConcurrency: number,
	intervalMs: number,
	pacing: StartupRun["pacing"],
): Promise<StartupRun> {
	await warmUp(server.url, shards);
	const queue = freshQueueName(`s${shards}-c${maxConcurrency}`);
	const loadAverage = Number(loadavg()[0]?.toFixed(2));
	const before = await sampleWorkerd(server);
	const grants = await Promise.all(
		Array.from({ length: shards }, async (_, shard) => {
			const { waitedMs: _waitedMs, ...grant } = await requestGrant(server.url, queue, shard);
			return grant;
		}),
	);
	const after = await sampleWorkerd(server);
	return {
		pacing,
		figures: batchFigures(grants, maxConcurrency, intervalMs),
		workerdCpuMsPerGrant: (after.cpuMs - before.cpuMs) / shards,
		loadAverage,
		grants,
	};
}

/** Latencies of the bench Worker's probes, beside the app's routes (bench/worker/index.ts). */
export interface FloorProbes {
	/** `GET /_bench/plain`: a JSON answer straight from the Worker, no app (Hono, middleware). */
	plainMs: Distribution;
	/** `GET /_bench/rpc`: a call into a queue object that writes nothing. */
	rpcMs: Distribution;
	/** `GET /_bench/floor`: a call into a queue object that answers once one row is committed (output gate). */
	floorMs: Distribution;
	/** workerd's CPU per request for `floorBatch` requests at once (the median of three batches) to `GET /_bench/rpc`. */
	rpcCpuMsPerRequest: number;
	/** The floor of each goal's start-up case (`roundFloorCases`). */
	roundFloors: RoundFloor[];
	/** workerd's CPU per wake-up of an object (a timer, then one row committed), 40 of them 50 ms apart within one call. */
	wakeUpCpuMs: number;
}

/** As many requests at once as the largest start-up batch, for the RPC probe. */
const floorBatch = 256;

/**
 * A start-up's floor: its calls answered as an ideal queue would grant them,
 * `maxConcurrency` at a time, one interval apart, each round one timer and one
 * committed row (`GET /_bench/held-until`); workerd's CPU per call, the median of
 * three batches. The wake-ups and the commits a start-up cannot do without, and
 * none of the queue's work.
 */
export interface RoundFloor {
	shards: number;
	maxConcurrency: number;
	cpuMsPerCall: number;
}

/** The start-up cases of the CPU goals, as `[shards, maxConcurrency]`. */
export const roundFloorCases = [
	[256, 16],
	[64, 4],
	[256, 4],
] as const;

/** The first round of a floor batch comes this long after the batch is sent, once every call has arrived. */
const roundFloorLeadMs = 100;

export interface Overhead {
	/** Rounds of one request to each route, in turn. */
	rounds: number;
	grantMs: Distribution;
	healthMs: Distribution;
	/** With the bench Worker only. */
	probes?: FloorProbes;
	/** Median grant latency over median health latency. */
	ratioOfMedians: number;
	/** Grants that waited at all (should be 0: every bucket was idle). */
	grantsThatWaited: number;
}

/**
 * Scenario 3: a request to an idle bucket (granted at once) against `GET
 * /_/health` of the same Worker, one after the other, rotating which goes first;
 * with the bench Worker (`probes`), also its floor probes in the same rotation.
 * Shards rotate over all buckets with a pause, so each bucket is idle again.
 */
export async function overhead(
	server: QueueServer,
	rounds: number,
	maxConcurrency: number,
	intervalMs: number,
	probes = false,
): Promise<Overhead> {
	await warmUp(server.url, 4);
	const queue = freshQueueName("overhead");
	const floorQueue = freshQueueName("floor");
	const pauseMs = Math.ceil((intervalMs * 1.2) / maxConcurrency);
	const times = new Map<string, number[]>();
	let grantsThatWaited = 0;
	const timed = (name: string, call: (round: number) => Promise<unknown>) => async (round: number) => {
		const startMs = performance.now();
		await call(round);
		const elapsedMs = performance.now() - startMs;
		times.set(name, [...(times.get(name) ?? []), elapsedMs]);
	};
	const routes = [
		timed("grant", async (round) => {
			if ((await requestGrant(server.url, queue, round)).waitedMs > 0) grantsThatWaited++;
		}),
		timed("health", () => getJson(`${server.url}/_/health`)),
		...(probes
			? [
					timed("plain", () => getJson(`${server.url}/_bench/plain`)),
					timed("rpc", () => getJson(`${server.url}/_bench/rpc?queue=${floorQueue}`)),
					timed("floor", () => getJson(`${server.url}/_bench/floor?queue=${floorQueue}`)),
				]
			: []),
	];
	for (let round = 0; round < rounds; round++) {
		for (let index = 0; index < routes.length; index++) await routes[(round + index) % routes.length]?.(round);
		await sleep(pauseMs);
	}
	const of = (name: string) => distribution(times.get(name) ?? []);
	const [grant, health] = [of("grant"), of("health")];
	const cpuOf = (path: (index: number) => string) =>
		cpuPerRequest(server, floorBatch, (index) => getJson(`${server.url}${path(index)}`));
	const rpcCpuMsPerRequest = probes ? await cpuOf(() => `/_bench/rpc?queue=${floorQueue}`) : 0;
	const roundFloors: RoundFloor[] = [];
	for (const [shards, maxConcurrency] of probes ? roundFloorCases : []) {
		const cpuMsPerCall = await cpuPerRequest(server, shards, (index, batchStartMs) => {
			const atMs = batchStartMs + roundFloorLeadMs + Math.floor(index / maxConcurrency) * intervalMs;
			return getJson(`${server.url}/_bench/held-until?queue=${floorQueue}&at=${atMs}`);
		});
		roundFloors.push({ shards, maxConcurrency, cpuMsPerCall });
	}
	const wakeUpCpuMs = probes
		? (await cpuPerRequest(server, 1, () =>
				getJson(`${server.url}/_bench/wake-ups?queue=${floorQueue}&rounds=40&ms=50`),
			)) / 40
		: 0;
	return {
		rounds,
		grantMs: grant,
		healthMs: health,
		...(probes && {
			probes: {
				plainMs: of("plain"),
				rpcMs: of("rpc"),
				floorMs: of("floor"),
				rpcCpuMsPerRequest,
				roundFloors,
				wakeUpCpuMs,
			},
		}),
		ratioOfMedians: grant.p50 / health.p50,
		grantsThatWaited,
	};
}

/** workerd's CPU per request for `count` requests at once: the median of three batches, on warm connections. */
async function cpuPerRequest(
	server: QueueServer,
	count: number,
	call: (index: number, batchStartMs: number) => Promise<unknown>,
): Promise<number> {
	await warmUp(server.url, count);
	const perRequest: number[] = [];
	for (let batch = 0; batch < 3; batch++) {
		const before = await sampleWorkerd(server);
		const batchStartMs = Date.now();
		await Promise.all(Array.from({ length: count }, (_, index) => call(index, batchStartMs)));
		const after = await sampleWorkerd(server);
		perRequest.push((after.cpuMs - before.cpuMs) / count);
	}
	return distribution(perRequest).p50;
}

interface FillAnswer {
	/** `[shard, bucket, grantedAtMs, waitedMs]` (bench/worker/index.ts). */
	grants: [number, number, number, number][];
	refused: string[];
}

function fillUrl(server: QueueServer, queue: string, from: number, count: number): string {
	return `${server.url}/_bench/fill?queue=${queue}&from=${from}&count=${count}`;
}

async function waitingIn(server: QueueServer, queue: string): Promise<number> {
	return (await getJson<{ waiting: number }>(`${server.url}/_bench/waiting?queue=${queue}`)).waiting;
}

/** Polls until the queue holds at least `atLeast` waiters, or `done()`. */
async function untilWaiting(server: QueueServer, queue: string, atLeast: number, done = () => false): Promise<void> {
	while (!done() && (await waitingIn(server, queue)) < atLeast) await sleep(10);
}

export interface CapacityRun {
	label: string;
	/**
	 * How the waiters were made: `object`, inside each queue object by the bench
	 * Worker (all of a queue's at one instant); `http`, one held HTTP request each,
	 * all sent at once over warm connections.
	 */
	method: "object" | "http";
	queues: number;
	waitersPerQueue: number;
	maxConcurrency: number;
	intervalMs: number;
	granted: number;
	/** Refused by the queue (object level), or failed requests (HTTP: not a 200). */
	refused: number;
	/** The first failure's message, HTTP only. */
	firstFailure?: string;
	/** Shards granted more or less than once. */
	lost: number;
	/**
	 * Grants of a bucket out of arrival order, over all queues: by the server's clock,
	 * and at the object level also by shard (the order the waiters were made in).
	 */
	outOfOrder: number;
	smallestSpacingMs: number | null;
	/** The worst queue's makespan over its legal minimum (all its waiters at once). */
	worstMakespanRatio: number | null;
	worstMakespanMs: number;
	legalMinimumMs: number;
	/** The worst queue's last grant after its first arrival, over the least possible given the arrivals. */
	worstRatioGivenArrivals: number | null;
	/** The largest spread of one queue's arrivals (how long the requests took to get in). */
	arrivalSpreadMs: number | null;
	/** Every grant's lateness: after its arrival (a bucket's first) or the previous grant + interval, whichever is later. */
	latenessMs: Distribution;
	/**
	 * How busy workerd's busiest thread was (CPU over wall time): over HTTP while the requests
	 * came in (first to last arrival), at object level from full to drained; null when unmeasured.
	 */
	threadBusy: number | null;
	/** The last bucket of the worst queue given its arrivals: its lateness added up while requests came in, and after (HTTP). */
	lastBucketLatenessMs: BatchFigures["lastBucketLatenessMs"];
	/**
	 * workerd's CPU time (whole process) per grant: object level, from full queue(s)
	 * to the last grant, null when every queue was drained before all were seen full;
	 * HTTP, from the first request sent to the last answer (the requests' own work included).
	 */
	workerdCpuMsPerGrant: number | null;
	heapBytesWhenFull?: number;
	rssBytesWhenFull?: number;
	/** workerd's RSS before the waiters came (HTTP: after the warm-up). */
	rssBytesBefore?: number;
	durationMs: number;
}

interface QueueGrants {
	grants: GrantRecord[];
	/** Waiters of the queue that were not granted (refused, failed). */
	missing: number;
}

/** The figures of a capacity run, from each queue's grants. */
function capacitySummary(
	perQueue: QueueGrants[],
	waitersPerQueue: number,
	maxConcurrency: number,
	intervalMs: number,
	orderedByShard: boolean,
): Pick<
	CapacityRun,
	| "granted"
	| "lost"
	| "outOfOrder"
	| "smallestSpacingMs"
	| "worstMakespanRatio"
	| "worstMakespanMs"
	| "legalMinimumMs"
	| "worstRatioGivenArrivals"
	| "arrivalSpreadMs"
	| "latenessMs"
	| "lastBucketLatenessMs"
> {
	const figures: BatchFigures[] = [];
	let lost = 0;
	const intakeEndMs = lastArrivalOf(perQueue.flatMap((queue) => queue.grants));
	for (const { grants, missing } of perQueue) {
		const shards = new Set(grants.map((grant) => grant.shard));
		lost += waitersPerQueue - missing - shards.size + (grants.length - shards.size);
		if (grants.length > 0) figures.push(batchFigures(grants, maxConcurrency, intervalMs, intakeEndMs));
	}
	const worstOf = (ratio: (f: BatchFigures) => number | null) =>
		figures.reduce<BatchFigures | undefined>(
			(a, b) => (a === undefined || (ratio(b) ?? 0) > (ratio(a) ?? 0) ? b : a),
			undefined,
		);
	const worst = worstOf((f) => f.makespanRatio);
	const worstGivenArrivals = worstOf((f) => f.ratioGivenArrivals);
	const spacings = figures.flatMap((f) => (f.smallestSpacingMs === null ? [] : [f.smallestSpacingMs]));
	const spreads = figures.flatMap((f) => (f.arrivalSpreadMs === null ? [] : [f.arrivalSpreadMs]));
	return {
		granted: figures.reduce((sum, f) => sum + f.shards, 0),
		lost,
		outOfOrder: figures.reduce((sum, f) => sum + f.arrivalOrderViolations + (orderedByShard ? f.outOfOrder : 0), 0),
		smallestSpacingMs: spacings.length > 0 ? Math.min(...spacings) : null,
		worstMakespanRatio: worst?.makespanRatio ?? null,
		worstMakespanMs: worst?.makespanMs ?? 0,
		legalMinimumMs: worst?.legalMinimumMs ?? 0,
		worstRatioGivenArrivals: worstGivenArrivals?.ratioGivenArrivals ?? null,
		arrivalSpreadMs: spreads.length > 0 ? Math.max(...spreads) : null,
		latenessMs: distribution(figures.flatMap((f) => [...f.firstLatenessMs, ...f.latenessMs])),
		lastBucketLatenessMs: worstGivenArrivals?.lastBucketLatenessMs ?? null,
	};
}

/**
 * Scenario 4, object level: `queues` queues of `waitersPerQueue` waiters each,
 * all at the same time, made inside the objects (bench Worker); all must be
 * granted, in order. Locally all objects share one workerd thread, so many busy
 * queues delay each other's timers; in production they run apart.
 */
export async function capacity(
	server: QueueServer,
	label: string,
	queues: number,
	waitersPerQueue: number,
	maxConcurrency: number,
	intervalMs: number,
): Promise<CapacityRun> {
	const names = Array.from({ length: queues }, (_, index) => freshQueueName(`cap${index}`));
	// Creates the objects first: a cold object's start-up (its SQLite database) is not what is measured.
	await Promise.all(names.map((name) => waitingIn(server, name)));
	const startMs = performance.now();
	const answered = new Set<string>();
	const answers = Promise.all(
		names.map(async (name) => {
			const answer = await getJson<FillAnswer>(fillUrl(server, name, 0, waitersPerQueue));
			answered.add(name);
			return answer;
		}),
	);
	// Full: each queue holds its waiters but the rounds granted while the others filled (or has answered already).
	const roundsToFill = 1 + Math.ceil(waitersPerQueue / maxConcurrency / 10);
	for (const name of names) {
		await untilWaiting(server, name, waitersPerQueue - roundsToFill * maxConcurrency, () => answered.has(name));
	}
	const full = await sampleWorkerd(server);
	const drainedBeforeFull = answered.size === names.length;
	const heapBytesWhenFull = await isolateHeapUsedBytes(server);
	const sampler = sampleThreadsEvery(server, threadSampleEveryMs);
	const fullAtMs = Date.now();
	const results = await answers.finally(() => sampler.stop());
	const drainedAtMs = Date.now();
	const samples = await sampler.stop();
	const threadBusy = drainedBeforeFull ? null : busiestThreadShare(samples, fullAtMs, drainedAtMs);
	const drained = await sampleWorkerd(server);
	const durationMs = performance.now() - startMs;

	const perQueue = results.map((result) => ({
		grants: result.grants.map(([shard, bucket, grantedAtMs, waitedMs]) => ({
			shard,
			bucket,
			grantedAtMs,
			arrivedAtMs: grantedAtMs - waitedMs,
		})),
		missing: result.refused.length,
	}));
	const summary = capacitySummary(perQueue, waitersPerQueue, maxConcurrency, intervalMs, true);
	return {
		label,
		method: "object",
		queues,
		waitersPerQueue,
		maxConcurrency,
		intervalMs,
		refused: results.reduce((sum, result) => sum + result.refused.length, 0),
		...summary,
		workerdCpuMsPerGrant: drainedBeforeFull ? null : (drained.cpuMs - full.cpuMs) / Math.max(1, summary.granted),
		threadBusy,
		...(heapBytesWhenFull !== undefined && { heapBytesWhenFull }),
		rssBytesWhenFull: full.rssBytes,
		durationMs,
	};
}

/**
 * Scenario 4 over HTTP: `queues` queues of `waitersPerQueue` shards, one held
 * request each, all sent at once (queue by queue, as bots starting together
 * would each send their shards' requests) on connections opened beforehand. Every request is answered: a failure counts as
 * refused. The server's clock gives each request's arrival in its queue, so
 * order and lateness are judged against when the requests got in, not when
 * they were sent (one workerd thread takes them in one by one, over seconds).
 */
export async function httpCapacity(
	server: QueueServer,
	label: string,
	queues: number,
	waitersPerQueue: number,
	maxConcurrency: number,
	intervalMs: number,
): Promise<CapacityRun> {
	const total = queues * waitersPerQueue;
	await warmUp(server.url, total);
	const names = Array.from({ length: queues }, (_, index) => freshQueueName(`http${index}`));
	await Promise.all(names.map((name) => waitingIn(server, name)));
	const before = await sampleWorkerd(server);
	const startMs = performance.now();
	const perQueue: QueueGrants[] = names.map(() => ({ grants: [], missing: 0 }));
	let answered = 0;
	let refused = 0;
	let firstFailure: string | undefined;
	const requests: Promise<void>[] = [];
	for (const [index, name] of names.entries()) {
		const queue = perQueue[index] as QueueGrants;
		for (let shard = 0; shard < waitersPerQueue; shard++) {
			requests.push(
				requestGrant(server.url, name, shard).then(
					({ waitedMs: _waitedMs, ...grant }) => {
						queue.grants.push(grant);
						answered++;
					},
					(error: unknown) => {
						queue.missing++;
						refused++;
						answered++;
						firstFailure ??= error instanceof Error ? error.message : String(error);
					},
				),
			);
		}
	}
	const sampler = sampleThreadsEvery(server, threadSampleEveryMs);
	// All in: every request is waiting in its queue or answered (one queue only: polling many would perturb them).
	let whenFull: { heapBytes?: number; rssBytes: number } | undefined;
	if (queues === 1 && names[0] !== undefined) {
		const name = names[0];
		while (answered < total && (await waitingIn(server, name)) + answered < total) await sleep(50);
		if (answered < total) {
			const sample = await sampleWorkerd(server);
			const heapBytes = await isolateHeapUsedBytes(server);
			whenFull = { rssBytes: sample.rssBytes, ...(heapBytes !== undefined && { heapBytes }) };
		}
	}
	await Promise.all(requests).finally(() => sampler.stop());
	const samples = await sampler.stop();
	const after = await sampleWorkerd(server);
	const durationMs = performance.now() - startMs;
	const summary = capacitySummary(perQueue, waitersPerQueue, maxConcurrency, intervalMs, false);
	const arrivals = perQueue.flatMap((queue) => queue.grants.map((grant) => grant.arrivedAtMs ?? Number.NaN));
	return {
		label,
		method: "http",
		queues,
		waitersPerQueue,
		maxConcurrency,
		intervalMs,
		refused,
		...(firstFailure !== undefined && { firstFailure: firstFailure.slice(0, 300) }),
		...summary,
		workerdCpuMsPerGrant: (after.cpuMs - before.cpuMs) / Math.max(1, summary.granted),
		threadBusy: busiestThreadShare(samples, Math.min(...arrivals), Math.max(...arrivals)),
		...(whenFull?.heapBytes !== undefined && { heapBytesWhenFull: whenFull.heapBytes }),
		...(whenFull && { rssBytesWhenFull: whenFull.rssBytes }),
		rssBytesBefore: before.rssBytes,
		durationMs,
	};
}

export interface MemorySample {
	waiting: number;
	heapBytes?: number;
	rssBytes: number;
}

/**
 * Memory of one queue object as it fills to `steps` waiters (bench Worker): the
 * isolate's heap and workerd's RSS at each step, from an idle baseline. The
 * waiters are left waiting; stopping the server ends them.
 */
export async function memory(server: QueueServer, steps: number[]): Promise<MemorySample[]> {
	const queue = freshQueueName("memory");
	await waitingIn(server, queue);
	await sleep(500);
	const baseline = await sampleWorkerd(server);
	const baselineHeap = await isolateHeapUsedBytes(server);
	const samples: MemorySample[] = [
		{ waiting: 0, rssBytes: baseline.rssBytes, ...(baselineHeap !== undefined && { heapBytes: baselineHeap }) },
	];
	let filled = 0;
	for (const step of steps) {
		getJson(fillUrl(server, queue, filled, step - filled)).catch(() => undefined);
		filled = step;
		await untilWaiting(server, queue, step - 200);
		const sample = await sampleWorkerd(server);
		const heapBytes = await isolateHeapUsedBytes(server);
		samples.push({
			waiting: await waitingIn(server, queue),
			rssBytes: sample.rssBytes,
			...(heapBytes !== undefined && { heapBytes }),
		});
	}
	return samples;
}

export interface Takeover {
	/** Figures of the grants the shards received (their `granted_at`), in the order they came. */
	figures: BatchFigures;
	/** Requests abandoned and sent again, over all shards. */
	retries: number;
	abandonAfterMs: [number, number];
	/** What the queue object saw (bench Worker, `BENCH_ARRIVALS=on`); absent on the project's Worker. */
	object?: {
		/** Shards whose first request reached the object after a higher shard's (sent 3 ms apart, on their own connections). */
		arrivalInversions: number;
		/**
		 * Shards whose first grant came before that of a shard whose first request had
		 * reached the object earlier: a real FIFO violation.
		 */
		fifoViolations: number;
		/**
		 * Grants made to a request its client had just abandoned (its answer still on its
		 * way at the client's timeout): the shard's retry then joins the back of the line.
		 * Each shard granted more than once counts its grants after the first.
		 */
		grantsToAbandonedRequests: number;
		/** Those shards, with the ms between the abandoned grant and the client's timeout. */
		abandonedGrants: { shard: number; grantedBeforeTimeoutMs: number }[];
	};
}

/** `GET /_bench/arrivals`: `[shard, ticket, arrived at, outcome, at]` (bench/worker/index.ts). */
type ObjectArrival = [number | null, string, number, string, number | null];

/**
 * Scenario 5: shards ask in shard order (a few ms apart), then each abandons its
 * request every 2-3 s and asks again for the same shard until granted. Local
 * workerd reports no disconnects, so the abandoned request is still in line when
 * the retry takes its place over. With `objectView` (bench Worker with
 * `BENCH_ARRIVALS=on`), what the object saw tells a reordering on the way in, a
 * FIFO violation and a grant its client had just abandoned apart.
 */
export async function takeover(
	server: QueueServer,
	shards: number,
	maxConcurrency: number,
	intervalMs: number,
	objectView = false,
): Promise<Takeover> {
	await warmUp(server.url, shards);
	const queue = freshQueueName("takeover");
	const abandonAfterMs: [number, number] = [2000, 3000];
	let retries = 0;
	/** Per shard, when (Date.now, the server's clock too) each of its requests was abandoned. */
	const abandonedAtMs = new Map<number, number[]>();
	const patientShard = async (shard: number): Promise<GrantRecord> => {
		await sleep(shard * 3);
		const patienceMs = abandonAfterMs[0] + ((shard * 389) % (abandonAfterMs[1] - abandonAfterMs[0]));
		for (;;) {
			const signal = AbortSignal.timeout(patienceMs);
			try {
				// The arrival is the last retry's, not the place's: left out.
				const {
					waitedMs: _waitedMs,
					arrivedAtMs: _arrivedAtMs,
					...grant
				} = await requestGrant(server.url, queue, shard, signal);
				return grant;
			} catch (error) {
				if (!signal.aborted) throw error;
				abandonedAtMs.set(shard, [...(abandonedAtMs.get(shard) ?? []), Date.now()]);
				retries++;
			}
		}
	};
	const grants = await Promise.all(Array.from({ length: shards }, (_, shard) => patientShard(shard)));
	const result: Takeover = { figures: batchFigures(grants, maxConcurrency, intervalMs), retries, abandonAfterMs };
	if (!objectView) return result;
	const arrivals = await getJson<ObjectArrival[]>(`${server.url}/_bench/arrivals?queue=${queue}`);
	// None: the object logs nothing (BENCH_ARRIVALS not on), which is no evidence of order.
	if (arrivals.length === 0) return result;
	return { ...result, object: objectSummary(arrivals, abandonedAtMs, maxConcurrency) };
}

function objectSummary(
	arrivals: ObjectArrival[],
	abandonedAtMs: Map<number, number[]>,
	maxConcurrency: number,
): NonNullable<Takeover["object"]> {
	const firstArrival: number[] = [];
	const grantsOf = new Map<number, number[]>();
	for (const [shard, , , outcome, atMs] of arrivals) {
		if (shard === null) continue;
		if (!firstArrival.includes(shard)) firstArrival.push(shard);
		if (outcome === "granted" && atMs !== null) grantsOf.set(shard, [...(grantsOf.get(shard) ?? []), atMs]);
	}
	const arrivalInversions = firstArrival.filter((shard, index) => index > 0 && shard < (firstArrival[index - 1] ?? 0));
	// Per bucket, in first-arrival order: a shard first granted before one that arrived ahead of it overtook it.
	let fifoViolations = 0;
	const latestFirstGrantMs = new Map<number, number>();
	for (const shard of firstArrival) {
		const firstGrantMs = grantsOf.get(shard)?.[0];
		if (firstGrantMs === undefined) continue;
		const bucket = shard % maxConcurrency;
		const latestMs = latestFirstGrantMs.get(bucket) ?? Number.NEGATIVE_INFINITY;
		if (firstGrantMs < latestMs) fifoViolations++;
		latestFirstGrantMs.set(bucket, Math.max(latestMs, firstGrantMs));
	}
	const abandonedGrants = [...grantsOf].flatMap(([shard, times]) =>
		times.slice(0, -1).map((grantedAtMs) => {
			const timeoutMs = (abandonedAtMs.get(shard) ?? []).find((atMs) => atMs >= grantedAtMs) ?? grantedAtMs;
			return { shard, grantedBeforeTimeoutMs: timeoutMs - grantedAtMs };
		}),
	);
	return {
		arrivalInversions: arrivalInversions.length,
		fifoViolations,
		grantsToAbandonedRequests: abandonedGrants.length,
		abandonedGrants,
	};
}
