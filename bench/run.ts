/**
 * `npm run bench`: starts the queue on free ports under `wrangler dev`, self-hosted
 * on plain workerd (`npm run serve`), or both (`--runtime=wrangler|workerd|both`,
 * default both: each configuration under one runtime, then the other). One server
 * per configuration; process groups killed at the end, on failure and on Ctrl-C.
 * Runs the scenarios, prints the tables and the goals, and writes
 * bench/results/latest.{json,md} and timeline.svg, and (both runtimes) the goals
 * into bench/README.md between its markers. `--smoke` runs a tiny version for CI
 * and writes nothing.
 *
 * Exits non-zero when a bucket was ever granted twice within the interval, or a
 * waiter was lost, refused or served out of its arrival order; a full run also
 * when a goal of the table is missed.
 */

import { readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { compactFigures, distribution } from "./analysis.ts";
import { agent } from "./client.ts";
import { heldRequestsAllowed, openFileLimit } from "./limits.ts";
import {
	type BenchResults,
	failures,
	goalsMarkdown,
	markdownReport,
	missedGoals,
	type RuntimeResults,
	snakeCaseKeys,
	withGoals,
} from "./report.ts";
import {
	capacity,
	httpCapacity,
	memory,
	overhead,
	repeatedStartupRun,
	type StartupRun,
	startupRun,
	takeover,
} from "./scenarios.ts";
import { type QueueServer, type Runtime, runtimes, startServer } from "./servers.ts";
import { timelineSvg } from "./timeline.ts";

const { values: flags } = parseArgs({
	options: {
		smoke: { type: "boolean", default: false },
		runtime: { type: "string", default: "both" },
		only: { type: "string" },
	},
});
const smoke = flags.smoke;
/** `--only=burst,takeover`: some parts of the full run, for working on them; prints, writes nothing. */
const parts = ["startup", "takeover", "alarm-only", "overhead", "queues", "burst", "memory"] as const;
type Part = (typeof parts)[number];
const only = flags.only?.split(",").filter(Boolean);
const unknownPart = only?.find((part) => !(parts as readonly string[]).includes(part));
if (unknownPart !== undefined) {
	console.error(`--only takes ${parts.join(", ")}, not ${unknownPart}`);
	process.exit(2);
}
const included = (part: Part) => only === undefined || only.includes(part);
const partial = only !== undefined;
const isRuntime = (name: string): name is Runtime => (runtimes as readonly string[]).includes(name);
if (flags.runtime !== "both" && !isRuntime(flags.runtime)) {
	console.error(`--runtime must be wrangler, workerd or both, not ${flags.runtime}`);
	process.exit(2);
}
const selected: readonly Runtime[] = isRuntime(flags.runtime) ? [flags.runtime] : runtimes;
const intervalMs = 200;
/** The burst cases' interval: 16 buckets, 50 ms, as the goals say. */
const burstIntervalMs = 50;
const benchWorkerConfig = join(import.meta.dirname, "worker", "wrangler.toml");
const resultsDir = join(import.meta.dirname, "results");
const readmePath = join(import.meta.dirname, "README.md");

/** The largest burst over HTTP, under plain workerd only: as many held requests as its open files allow, at most 10,000. */
const fileLimit = openFileLimit();
const largestBurst = Math.min(10_000, heldRequestsAllowed(fileLimit));
/** `wrangler dev` carries about 5,000 held requests at most; 5,000 at once (100 × 50) got no answer in 300 s in a trial. */
const wranglerHeldLimit = 4_000;

let running: QueueServer | undefined;
process.once("SIGINT", () => {
	console.error("interrupted: stopping the server");
	void (running?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
});

/**
 * Runs `body` against a fresh server under `runtime` with these vars (and
 * optionally the bench's Worker; `inspector` for its heap figures, which
 * `wrangler dev` always has).
 */
async function withServer<T>(
	runtime: Runtime,
	vars: Record<string, string>,
	body: (server: QueueServer) => Promise<T>,
	options: { configPath?: string; inspector?: boolean } = {},
): Promise<T> {
	running = await startServer(runtime, { IDENTIFY_INTERVAL_MS: String(intervalMs), ...vars }, options);
	try {
		return await body(running);
	} finally {
		await running.stop();
		running = undefined;
	}
}

function progress(message: string): void {
	console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

const shardCounts = smoke ? [8] : [16, 64, 256];
/** How many times a start-up case of the goals runs; the goals take the medians. */
const goalRuns = 3;
const concurrencies = smoke ? [2] : [1, 4, 16];
const startedAt = new Date().toISOString();
const startedMs = performance.now();
/** Other work on the machine (its 1-minute load average) perturbs the timings. */
const loadAverageAtStart = Number(loadavg()[0]?.toFixed(2));

interface Collected {
	startup: StartupRun[];
	alarmOnly: StartupRun[];
	overhead?: RuntimeResults["overhead"];
	takeover?: RuntimeResults["takeover"];
	capacity: RuntimeResults["capacity"];
	memory: RuntimeResults["memory"];
}
const collected = new Map<Runtime, Collected>(
	selected.map((runtime) => [runtime, { startup: [], alarmOnly: [], capacity: [], memory: [] }]),
);
const of = (runtime: Runtime) => collected.get(runtime) as Collected;

// Scenario 1 on the project's own Worker.
for (const maxConcurrency of included("startup") ? concurrencies : []) {
	for (const runtime of selected) {
		await withServer(runtime, { MAX_CONCURRENCY: String(maxConcurrency) }, async (server) => {
			for (const shards of shardCounts) {
				// The goals' cases three times (a run's CPU and ratios vary by a fifth or more here); C = 1 takes too long.
				const runs = smoke || maxConcurrency < 4 ? 1 : goalRuns;
				progress(`${runtime}: start-up: ${shards} shards, max_concurrency ${maxConcurrency}, ${runs} run(s)`);
				of(runtime).startup.push(await repeatedStartupRun(runs, server, shards, maxConcurrency, intervalMs, "timer"));
			}
		});
	}
}

for (const runtime of smoke || !included("takeover") ? [] : selected) {
	// Scenario 5 on the bench's Worker, which tells what the object saw.
	of(runtime).takeover = await withServer(
		runtime,
		{ MAX_CONCURRENCY: "1", BENCH_ARRIVALS: "on" },
		(server) => {
			progress(`${runtime}: takeover: 64 shards abandoning and retrying every 2-3 s`);
			return takeover(server, 64, 1, intervalMs, true);
		},
		{ configPath: benchWorkerConfig },
	);
}

for (const maxConcurrency of smoke || !included("alarm-only") ? [] : concurrencies) {
	for (const runtime of selected) {
		await withServer(
			runtime,
			{ MAX_CONCURRENCY: String(maxConcurrency), BENCH_TIMER: "off" },
			async (server) => {
				progress(`${runtime}: start-up, alarm only: 64 shards, max_concurrency ${maxConcurrency}`);
				of(runtime).alarmOnly.push(await startupRun(server, 64, maxConcurrency, intervalMs, "alarm only"));
			},
			{ configPath: benchWorkerConfig },
		);
	}
}

for (const runtime of selected) {
	const capacityRuns = of(runtime).capacity;
	const heldLimit = runtime === "wrangler" ? wranglerHeldLimit : largestBurst;
	// I = 200 ms: the overhead (scenario 3), without the inspector: workerd with one sends it every
	// console.log, which made an idle grant's log line cost about 0.3 ms here.
	if (!smoke && included("overhead")) {
		await withServer(
			runtime,
			{ MAX_CONCURRENCY: "16" },
			async (server) => {
				progress(`${runtime}: overhead: idle bucket against /_/health and the floor probes`);
				of(runtime).overhead = await overhead(server, 300, 16, intervalMs, true);
			},
			{ configPath: benchWorkerConfig },
		);
	}
	// Many queues at once; the inspector gives the heap when full.
	if (smoke || included("queues")) {
		await withServer(
			runtime,
			{ MAX_CONCURRENCY: "16", MAX_WAITERS_PER_QUEUE: "20000" },
			async (server) => {
				if (smoke) {
					progress(`${runtime}: capacity: 500 waiters in one queue, object level`);
					capacityRuns.push(await capacity(server, "500 waiters in one queue", 1, 500, 16, intervalMs));
					progress(`${runtime}: capacity: 160 waiters in one queue, over HTTP`);
					capacityRuns.push(await httpCapacity(server, "160 waiters in one queue", 1, 160, 16, intervalMs));
				}
				const [queues, perQueue] = smoke ? [10, 20] : [100, 50];
				const label = `${queues} queues × ${perQueue} waiters`;
				progress(`${runtime}: capacity: ${label}, object level`);
				capacityRuns.push(await capacity(server, label, queues, perQueue, 16, intervalMs));
				if (queues * perQueue <= heldLimit) {
					progress(`${runtime}: capacity: ${label}, over HTTP`);
					capacityRuns.push(await httpCapacity(server, label, queues, perQueue, 16, intervalMs));
				}
			},
			{ configPath: benchWorkerConfig, inspector: true },
		);
	}
	// I = 50 ms: one queue, thousands of waiters.
	if (!smoke && included("burst")) {
		await withServer(
			runtime,
			{ MAX_CONCURRENCY: "16", MAX_WAITERS_PER_QUEUE: "20000", IDENTIFY_INTERVAL_MS: String(burstIntervalMs) },
			async (server) => {
				for (const waiters of new Set([4_000, largestBurst])) {
					if (waiters > heldLimit) continue;
					const label = `${waiters} waiters in one queue`;
					progress(`${runtime}: capacity: ${label}, over HTTP`);
					capacityRuns.push(await httpCapacity(server, label, 1, waiters, 16, burstIntervalMs));
				}
				progress(`${runtime}: capacity: 10000 waiters in one queue, object level`);
				capacityRuns.push(await capacity(server, "10000 waiters in one queue", 1, 10_000, 16, burstIntervalMs));
			},
			{ configPath: benchWorkerConfig, inspector: true },
		);
	}
	if (!smoke && included("memory")) {
		of(runtime).memory = await withServer(
			runtime,
			{ MAX_CONCURRENCY: "16", MAX_WAITERS_PER_QUEUE: "20000", IDENTIFY_INTERVAL_MS: "600000" },
			async (server) => {
				progress(`${runtime}: memory: one queue filling to 10,000 and 20,000 waiters`);
				return memory(server, [10_000, 20_000]);
			},
			{ configPath: benchWorkerConfig, inspector: true },
		);
	}
}
await agent.close();

const runtimeResults: RuntimeResults[] = selected.map((runtime) => {
	const { startup, alarmOnly, overhead: overheadResult, takeover: takeoverResult, ...rest } = of(runtime);
	return {
		runtime,
		startup,
		jitter: {
			timer: distribution(startup.flatMap((run) => run.figures.latenessMs)),
			timerSteady: distribution(startup.flatMap((run) => run.figures.steadyLatenessMs)),
			alarmOnly: distribution(alarmOnly.flatMap((run) => run.figures.latenessMs)),
			alarmOnlySteady: distribution(alarmOnly.flatMap((run) => run.figures.steadyLatenessMs)),
		},
		alarmOnly,
		...(overheadResult && { overhead: overheadResult }),
		...(takeoverResult && { takeover: takeoverResult }),
		...rest,
	};
});

const results: BenchResults = withGoals({
	startedAt,
	smoke,
	...(only && { only }),
	durationS: Math.round((performance.now() - startedMs) / 1000),
	machine: {
		cpus: cpus().length,
		cpuModel: cpus()[0]?.model ?? "unknown",
		node: process.version,
		loadAverageAtStart,
		...(fileLimit && Number.isFinite(fileLimit.hard) && { openFilesLimit: fileLimit.hard }),
	},
	intervalMs,
	burstIntervalMs,
	largestBurst,
	runtimes: runtimeResults,
});
const report = markdownReport(results);
console.log(report);
if (!smoke && !partial) {
	const withoutGrants = ({ grants: _grants, figures, ...kept }: StartupRun) => ({
		...kept,
		figures: compactFigures(figures),
	});
	const json = {
		...results,
		runtimes: results.runtimes.map(({ startup: runs, alarmOnly: alarmRuns, takeover: takeoverRun, ...rest }) => ({
			...rest,
			startup: runs.map(withoutGrants),
			alarmOnly: alarmRuns.map(withoutGrants),
			...(takeoverRun && { takeover: { ...takeoverRun, figures: compactFigures(takeoverRun.figures) } }),
		})),
	};
	await writeFile(join(resultsDir, "latest.json"), `${JSON.stringify(snakeCaseKeys(json), null, "\t")}\n`);
	await writeFile(join(resultsDir, "latest.md"), report);
	const panelsOf = ({ runtime, startup: runs, alarmOnly: alarmRuns }: RuntimeResults) =>
		[
			...runs.filter((run) => run.figures.shards === 64),
			...alarmRuns.filter((run) => run.figures.maxConcurrency === 4),
		].map((run) => ({
			title: `${runtime}: ${run.figures.shards} shards, C=${run.figures.maxConcurrency}, ${run.pacing}`,
			maxConcurrency: run.figures.maxConcurrency,
			intervalMs,
			grants: run.grants,
		}));
	await writeFile(join(resultsDir, "timeline.svg"), timelineSvg(results.runtimes.flatMap(panelsOf)));
	progress(`wrote ${join("bench", "results")}/latest.json, latest.md, timeline.svg`);
	if (selected.length === runtimes.length) {
		await writeReadmeGoals(goalsMarkdown(results));
		progress("wrote the goals into bench/README.md");
	} else progress("bench/README.md keeps its goals: they are written by a run of both runtimes");
}
const failed = [...failures(results), ...(smoke ? [] : missedGoals(results))];
if (partial) progress(`--only ${only?.join(",")}: nothing written`);
for (const failure of failed) console.error(`FAIL: ${failure}`);
process.exitCode = failed.length > 0 ? 1 : 0;

/** Replaces what is between the README's markers (added at its end when it has none). */
async function writeReadmeGoals(table: string): Promise<void> {
	const [start, end] = ["<!-- results:start -->", "<!-- results:end -->"];
	const readme = await readFile(readmePath, "utf8");
	const block = `${start}\n${table.trimEnd()}\n${end}`;
	const from = readme.indexOf(start);
	const to = readme.indexOf(end);
	const updated =
		from !== -1 && to > from
			? `${readme.slice(0, from)}${block}${readme.slice(to + end.length)}`
			: `${readme.trimEnd()}\n\n${block}\n`;
	await writeFile(readmePath, updated);
}
