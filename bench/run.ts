/**
 * `npm run bench`: starts the queue on free ports under `wrangler dev`, self-hosted
 * on plain workerd (`npm run serve`), or both (`--runtime=wrangler|workerd|both`,
 * default both: each configuration under one runtime, then the other). One server
 * per configuration; process groups killed at the end, on failure and on Ctrl-C.
 * Runs the scenarios of the README's Benchmarks section, prints the tables and
 * writes bench/results/latest.{json,md} and timeline.svg. `--smoke` runs a tiny
 * version for CI and writes nothing. Exits non-zero when a bucket was ever granted
 * twice within the interval, or a waiter was lost, refused or served out of order.
 */

import { writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type QueueServer, type Runtime, runtimes, startServer } from "../tools/self-host-server.ts";
import { distribution } from "./analysis.ts";
import { agent } from "./client.ts";
import { type BenchResults, failures, markdownReport, type RuntimeResults, snakeCaseKeys } from "./report.ts";
import { capacity, memory, overhead, type StartupRun, startupRun, takeover } from "./scenarios.ts";
import { timelineSvg } from "./timeline.ts";

const { values: flags } = parseArgs({
	options: { smoke: { type: "boolean", default: false }, runtime: { type: "string", default: "both" } },
});
const smoke = flags.smoke;
const isRuntime = (name: string): name is Runtime => (runtimes as readonly string[]).includes(name);
if (flags.runtime !== "both" && !isRuntime(flags.runtime)) {
	console.error(`--runtime must be wrangler, workerd or both, not ${flags.runtime}`);
	process.exit(2);
}
const selected: readonly Runtime[] = isRuntime(flags.runtime) ? [flags.runtime] : runtimes;
const intervalMs = 200;
const benchWorkerConfig = join(import.meta.dirname, "worker", "wrangler.toml");
const resultsDir = join(import.meta.dirname, "results");

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
const concurrencies = smoke ? [2] : [1, 4, 16];
const startedAt = new Date().toISOString();
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

for (const maxConcurrency of concurrencies) {
	for (const runtime of selected) {
		await withServer(runtime, { MAX_CONCURRENCY: String(maxConcurrency) }, async (server) => {
			for (const shards of shardCounts) {
				progress(`${runtime}: start-up: ${shards} shards, max_concurrency ${maxConcurrency}`);
				of(runtime).startup.push(await startupRun(server, shards, maxConcurrency, intervalMs, "timer"));
			}
			if (!smoke && maxConcurrency === 16) {
				progress(`${runtime}: overhead: idle bucket against /_/health`);
				of(runtime).overhead = await overhead(server, 300, maxConcurrency, intervalMs);
			}
			if (!smoke && maxConcurrency === 1) {
				progress(`${runtime}: takeover: 64 shards abandoning and retrying every 2-3 s`);
				of(runtime).takeover = await takeover(server, 64, maxConcurrency, intervalMs);
			}
		});
	}
}

for (const maxConcurrency of smoke ? [] : concurrencies) {
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
	of(runtime).capacity = await withServer(
		runtime,
		{ MAX_CONCURRENCY: "16", MAX_WAITERS_PER_QUEUE: "20000" },
		async (server) => {
			const runs = [];
			const [oneQueue, manyQueues, perQueue] = smoke ? [500, 10, 20] : [10_000, 100, 50];
			progress(`${runtime}: capacity: ${oneQueue} waiters in one queue`);
			runs.push(await capacity(server, `${oneQueue} waiters in one queue`, 1, oneQueue, 16, intervalMs));
			progress(`${runtime}: capacity: ${manyQueues} queues x ${perQueue} waiters`);
			runs.push(
				await capacity(server, `${manyQueues} queues × ${perQueue} waiters`, manyQueues, perQueue, 16, intervalMs),
			);
			return runs;
		},
		{ configPath: benchWorkerConfig, inspector: true },
	);
	if (!smoke) {
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

const results: BenchResults = {
	startedAt,
	smoke,
	machine: {
		cpus: cpus().length,
		cpuModel: cpus()[0]?.model ?? "unknown",
		node: process.version,
		loadAverageAtStart: loadAverageAtStart,
	},
	intervalMs,
	runtimes: runtimeResults,
};
const report = markdownReport(results);
console.log(report);
if (!smoke) {
	const withoutGrants = (run: StartupRun) => {
		const { grants: _grants, figures, ...kept } = run;
		const { latenessMs, steadyLatenessMs, ...figuresKept } = figures;
		const lateness = { latenessMs: distribution(latenessMs), steadyLatenessMs: distribution(steadyLatenessMs) };
		return { ...kept, figures: { ...figuresKept, ...lateness } };
	};
	const json = {
		...results,
		runtimes: results.runtimes.map(({ startup: runs, alarmOnly: alarmRuns, ...rest }) => ({
			...rest,
			startup: runs.map(withoutGrants),
			alarmOnly: alarmRuns.map(withoutGrants),
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
}
const failed = failures(results);
for (const failure of failed) console.error(`FAIL: ${failure}`);
process.exitCode = failed.length > 0 ? 1 : 0;
