/** The bench's scenarios, each against a running server (`wrangler dev` or self-hosted workerd). */

import type { QueueServer } from "../tools/self-host-server.ts";
import { type BatchFigures, batchFigures, type Distribution, distribution, type GrantRecord } from "./analysis.ts";
import { freshQueueName, getJson, requestGrant, sleep, warmUp } from "./client.ts";
import { isolateHeapUsedBytes, sampleWorkerd } from "./process.ts";

export interface StartupRun {
	pacing: "timer" | "alarm only";
	figures: BatchFigures;
	/** workerd's CPU time (user + system, whole process) during the batch, per grant. */
	workerdCpuMsPerGrant: number;
	grants: GrantRecord[];
}

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
		grants,
	};
}

export interface Overhead {
	pairs: number;
	grantMs: Distribution;
	healthMs: Distribution;
	/** Median grant latency over median health latency. */
	ratioOfMedians: number;
	/** Grants that waited at all (should be 0: every bucket was idle). */
	grantsThatWaited: number;
}

/**
 * Scenario 3: a request to an idle bucket (granted at once) against `GET
 * /_/health` of the same Worker, one after the other, alternating which goes first.
 * Shards rotate over all buckets with a pause, so each bucket is idle again.
 */
export async function overhead(
	server: QueueServer,
	pairs: number,
	maxConcurrency: number,
	intervalMs: number,
): Promise<Overhead> {
	await warmUp(server.url, 4);
	const queue = freshQueueName("overhead");
	const pauseMs = Math.ceil((intervalMs * 1.2) / maxConcurrency);
	const grantMs: number[] = [];
	const healthMs: number[] = [];
	let grantsThatWaited = 0;
	const timeGrant = async (shard: number) => {
		const startMs = performance.now();
		const grant = await requestGrant(server.url, queue, shard);
		grantMs.push(performance.now() - startMs);
		if (grant.waitedMs > 0) grantsThatWaited++;
	};
	const timeHealth = async () => {
		const startMs = performance.now();
		await getJson(`${server.url}/_/health`);
		healthMs.push(performance.now() - startMs);
	};
	for (let pair = 0; pair < pairs; pair++) {
		if (pair % 2 === 0) {
			await timeHealth();
			await timeGrant(pair);
		} else {
			await timeGrant(pair);
			await timeHealth();
		}
		await sleep(pauseMs);
	}
	const [grant, health] = [distribution(grantMs), distribution(healthMs)];
	return { pairs, grantMs: grant, healthMs: health, ratioOfMedians: grant.p50 / health.p50, grantsThatWaited };
}

interface FillAnswer {
	grants: [number, number, number][];
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
	queues: number;
	waitersPerQueue: number;
	granted: number;
	refused: number;
	/** Shards granted more or less than once. */
	lost: number;
	/** Grants of a bucket out of arrival (= shard) order, over all queues. */
	outOfOrder: number;
	smallestSpacingMs: number | null;
	/** The worst queue's makespan over its legal minimum. */
	worstMakespanRatio: number | null;
	worstMakespanMs: number;
	legalMinimumMs: number;
	latenessMs: Distribution;
	/**
	 * workerd's CPU time (whole process) from full queue(s) to the last grant, per grant;
	 * null when every queue was drained before all were seen full (no window to measure).
	 */
	workerdCpuMsPerGrant: number | null;
	heapBytesWhenFull?: number;
	rssBytesWhenFull: number;
}

/**
 * Scenario 4: `queues` queues of `waitersPerQueue` waiters each, all at the same
 * time, made inside the objects (bench Worker); all must be granted, in order.
 * Locally all objects share one workerd thread, so many busy queues delay each
 * other's timers; in production they run apart.
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
	const results = await answers;
	const drained = await sampleWorkerd(server);

	const figures: BatchFigures[] = [];
	let lost = 0;
	let refused = 0;
	for (const result of results) {
		refused += result.refused.length;
		const grants = result.grants.map(([shard, bucket, grantedAtMs]) => ({ shard, bucket, grantedAtMs }));
		const shards = new Set(grants.map((grant) => grant.shard));
		lost += waitersPerQueue - shards.size + (grants.length - shards.size);
		figures.push(batchFigures(grants, maxConcurrency, intervalMs));
	}
	const worst = figures.reduce((a, b) => ((b.makespanRatio ?? 0) > (a.makespanRatio ?? 0) ? b : a));
	const spacings = figures.flatMap((f) => (f.smallestSpacingMs === null ? [] : [f.smallestSpacingMs]));
	const granted = figures.reduce((sum, f) => sum + f.shards, 0);
	return {
		label,
		queues,
		waitersPerQueue,
		granted,
		refused,
		lost,
		outOfOrder: figures.reduce((sum, f) => sum + f.outOfOrder, 0),
		smallestSpacingMs: spacings.length > 0 ? Math.min(...spacings) : null,
		worstMakespanRatio: worst.makespanRatio,
		worstMakespanMs: worst.makespanMs,
		legalMinimumMs: worst.legalMinimumMs,
		latenessMs: distribution(figures.flatMap((f) => f.latenessMs)),
		workerdCpuMsPerGrant: drainedBeforeFull ? null : (drained.cpuMs - full.cpuMs) / Math.max(1, granted),
		...(heapBytesWhenFull !== undefined && { heapBytesWhenFull }),
		rssBytesWhenFull: full.rssBytes,
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
	figures: BatchFigures;
	/** Requests abandoned and sent again, over all shards. */
	retries: number;
	abandonAfterMs: [number, number];
}

/**
 * Scenario 5: shards ask in shard order (a few ms apart), then each abandons its
 * request every 2-3 s and asks again for the same shard until granted. Local
 * `wrangler dev` reports no disconnects, so the abandoned request is still in
 * line when the retry takes its place over.
 */
export async function takeover(
	server: QueueServer,
	shards: number,
	maxConcurrency: number,
	intervalMs: number,
): Promise<Takeover> {
	await warmUp(server.url, shards);
	const queue = freshQueueName("takeover");
	const abandonAfterMs: [number, number] = [2000, 3000];
	let retries = 0;
	const patientShard = async (shard: number): Promise<GrantRecord> => {
		await sleep(shard * 3);
		const patienceMs = abandonAfterMs[0] + ((shard * 389) % (abandonAfterMs[1] - abandonAfterMs[0]));
		for (;;) {
			const signal = AbortSignal.timeout(patienceMs);
			try {
				const { waitedMs: _waitedMs, ...grant } = await requestGrant(server.url, queue, shard, signal);
				return grant;
			} catch (error) {
				if (!signal.aborted) throw error;
				retries++;
			}
		}
	};
	const grants = await Promise.all(Array.from({ length: shards }, (_, shard) => patientShard(shard)));
	return { figures: batchFigures(grants, maxConcurrency, intervalMs), retries, abandonAfterMs };
}
