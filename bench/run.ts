/**
 * `npm run bench`: starts the queue with `wrangler dev` on free ports (one server
 * per configuration, process groups killed at the end, on failure and on Ctrl-C),
 * runs the scenarios of the README's Benchmarks section, prints the tables and
 * writes bench/results/latest.{json,md} and timeline.svg. `--smoke` runs a tiny
 * version for CI and writes nothing. Exits non-zero when a bucket was ever granted
 * twice within the interval, or a waiter was lost, refused or served out of order.
 */

import { writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { type DevServer, startDevServer } from "../scripts/dev-server.ts";
import { distribution } from "./analysis.ts";
import { agent } from "./client.ts";
import { type BenchResults, failures, markdownReport, snakeCaseKeys } from "./report.ts";
import { capacity, memory, overhead, type StartupRun, startupRun, takeover } from "./scenarios.ts";
import { timelineSvg } from "./timeline.ts";

const smoke = process.argv.includes("--smoke");
const intervalMs = 200;
const benchWorkerConfig = join(import.meta.dirname, "worker", "wrangler.toml");
const resultsDir = join(import.meta.dirname, "results");

let running: DevServer | undefined;
process.once("SIGINT", () => {
	console.error("interrupted: stopping wrangler dev");
	void (running?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
});

/** Runs `body` against a fresh `wrangler dev` with these vars (and optionally the bench's Worker). */
async function withServer<T>(
	vars: Record<string, string>,
	body: (server: DevServer) => Promise<T>,
	configPath?: string,
): Promise<T> {
	running = await startDevServer({ IDENTIFY_INTERVAL_MS: String(intervalMs), ...vars }, 90_000, configPath);
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
const startup: StartupRun[] = [];
let overheadResult: Awaited<ReturnType<typeof overhead>> | undefined;
let takeoverResult: Awaited<ReturnType<typeof takeover>> | undefined;

for (const maxConcurrency of concurrencies) {
	await withServer({ MAX_CONCURRENCY: String(maxConcurrency) }, async (server) => {
		for (const shards of shardCounts) {
			progress(`start-up: ${shards} shards, max_concurrency ${maxConcurrency}`);
			startup.push(await startupRun(server, shards, maxConcurrency, intervalMs, "timer"));
		}
		if (!smoke && maxConcurrency === 16) {
			progress("overhead: idle bucket against /_/health");
			overheadResult = await overhead(server, 300, maxConcurrency, intervalMs);
		}
		if (!smoke && maxConcurrency === 1) {
			progress("takeover: 64 shards abandoning and retrying every 2-3 s");
			takeoverResult = await takeover(server, 64, maxConcurrency, intervalMs);
		}
	});
}

const alarmOnly: StartupRun[] = [];
for (const maxConcurrency of smoke ? [] : concurrencies) {
	await withServer(
		{ MAX_CONCURRENCY: String(maxConcurrency), BENCH_TIMER: "off" },
		async (server) => {
			progress(`start-up, alarm only: 64 shards, max_concurrency ${maxConcurrency}`);
			alarmOnly.push(await startupRun(server, 64, maxConcurrency, intervalMs, "alarm only"));
		},
		benchWorkerConfig,
	);
}

const capacityRuns = await withServer(
	{ MAX_CONCURRENCY: "16", MAX_WAITERS_PER_QUEUE: "20000" },
	async (server) => {
		const runs = [];
		const [oneQueue, manyQueues, perQueue] = smoke ? [500, 10, 20] : [10_000, 100, 50];
		progress(`capacity: ${oneQueue} waiters in one queue`);
		runs.push(await capacity(server, `${oneQueue} waiters in one queue`, 1, oneQueue, 16, intervalMs));
		progress(`capacity: ${manyQueues} queues x ${perQueue} waiters`);
		runs.push(
			await capacity(server, `${manyQueues} queues × ${perQueue} waiters`, manyQueues, perQueue, 16, intervalMs),
		);
		return runs;
	},
	benchWorkerConfig,
);

const memorySamples = smoke
	? []
	: await withServer(
			{ MAX_CONCURRENCY: "16", MAX_WAITERS_PER_QUEUE: "20000", IDENTIFY_INTERVAL_MS: "600000" },
			async (server) => {
				progress("memory: one queue filling to 10,000 and 20,000 waiters");
				return memory(server, [10_000, 20_000]);
			},
			benchWorkerConfig,
		);
await agent.close();

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
	startup,
	jitter: {
		timer: distribution(startup.flatMap((run) => run.figures.latenessMs)),
		timerSteady: distribution(startup.flatMap((run) => run.figures.steadyLatenessMs)),
		alarmOnly: distribution(alarmOnly.flatMap((run) => run.figures.latenessMs)),
		alarmOnlySteady: distribution(alarmOnly.flatMap((run) => run.figures.steadyLatenessMs)),
	},
	alarmOnly,
	...(overheadResult && { overhead: overheadResult }),
	capacity: capacityRuns,
	memory: memorySamples,
	...(takeoverResult && { takeover: takeoverResult }),
};
const report = markdownReport(results);
console.log(report);
if (!smoke) {
	const { startup: runs, alarmOnly: alarmRuns, ...rest } = results;
	const withoutGrants = (run: StartupRun) => {
		const { grants: _grants, figures, ...kept } = run;
		const { latenessMs, steadyLatenessMs, ...figuresKept } = figures;
		const lateness = { latenessMs: distribution(latenessMs), steadyLatenessMs: distribution(steadyLatenessMs) };
		return { ...kept, figures: { ...figuresKept, ...lateness } };
	};
	const json = { ...rest, startup: runs.map(withoutGrants), alarmOnly: alarmRuns.map(withoutGrants) };
	await writeFile(join(resultsDir, "latest.json"), `${JSON.stringify(snakeCaseKeys(json), null, "\t")}\n`);
	await writeFile(join(resultsDir, "latest.md"), report);
	const panelOf = (run: StartupRun) => ({
		title: `${run.figures.shards} shards, C=${run.figures.maxConcurrency}, ${run.pacing}`,
		maxConcurrency: run.figures.maxConcurrency,
		intervalMs,
		grants: run.grants,
	});
	const shown = [
		...runs.filter((run) => run.figures.shards === 64),
		...alarmRuns.filter((run) => run.figures.maxConcurrency === 4),
	];
	await writeFile(join(resultsDir, "timeline.svg"), timelineSvg(shown.map(panelOf)));
	progress(`wrote ${join("bench", "results")}/latest.json, latest.md, timeline.svg`);
}
const failed = failures(results);
for (const failure of failed) console.error(`FAIL: ${failure}`);
process.exitCode = failed.length > 0 ? 1 : 0;
