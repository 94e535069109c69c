/** The bench's results: the Markdown tables, the goals, and what makes a run fail. */
import { type Runtime, runtimeLabels } from "../tools/self-host-server.ts";
import type { Distribution } from "./analysis.ts";
import type { CapacityRun, MemorySample, Overhead, StartupRun, Takeover } from "./scenarios.ts";

/** Every scenario's figures under one runtime. */
export interface RuntimeResults {
	runtime: Runtime;
	startup: StartupRun[];
	jitter: { timer: Distribution; timerSteady: Distribution; alarmOnly: Distribution; alarmOnlySteady: Distribution };
	alarmOnly: StartupRun[];
	overhead?: Overhead;
	capacity: CapacityRun[];
	memory: MemorySample[];
	takeover?: Takeover;
}

export interface BenchResults {
	startedAt: string;
	smoke: boolean;
	machine: { cpus: number; cpuModel: string; node: string; loadAverageAtStart: number };
	intervalMs: number;
	runtimes: RuntimeResults[];
}

export const targets = { makespanRatio: 1.005, jitterP99Ms: 5, takeoverMakespanRatio: 1.02 };

const ms = (value: number | null | undefined, digits = 1) => (value == null ? "–" : value.toFixed(digits));
const ratio = (value: number | null | undefined) => (value == null ? "–" : value.toFixed(4));
const mb = (bytes: number | undefined) => (bytes === undefined ? "–" : (bytes / 1024 / 1024).toFixed(1));
const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
const header = (cells: string[]) => [row(cells), row(cells.map(() => "---"))];
const label = (runtime: Runtime) => runtimeLabels[runtime];
const runtimeNotes: Record<Runtime, string> = {
	wrangler: "*wrangler dev* (`npm start`: workerd behind wrangler's proxy Worker, with its inspector attached)",
	workerd: "*plain workerd* (`npm run serve`: the same bundle, self-hosted, no proxy)",
};
const latencyRow = (runtime: Runtime, route: string, d: Distribution) =>
	row([label(runtime), route, ms(d.p50, 2), ms(d.p99, 2), ms(d.max, 2), ms(d.mean, 2)]);

/** Every scenario-1 run's largest makespan ratio (runs of one round have none). */
function worstStartupRatio(runs: StartupRun[]): number | null {
	const ratios = runs.flatMap((run) => (run.figures.makespanRatio === null ? [] : [run.figures.makespanRatio]));
	return ratios.length > 0 ? Math.max(...ratios) : null;
}

/** The same run under each runtime, one after the other: runs are in the same order under every runtime. */
function interleaved<T>(results: RuntimeResults[], runsOf: (r: RuntimeResults) => T[]): [Runtime, T][] {
	const longest = Math.max(0, ...results.map((r) => runsOf(r).length));
	return Array.from({ length: longest }, (_, index) =>
		results.flatMap((r): [Runtime, T][] => {
			const run = runsOf(r)[index];
			return run === undefined ? [] : [[r.runtime, run]];
		}),
	).flat();
}

function startupTable(runs: [Runtime, StartupRun][]): string[] {
	return [
		...header([
			"runtime",
			"shards",
			"max_concurrency",
			"pacing",
			"legal minimum (ms)",
			"makespan (ms)",
			"makespan_ratio",
			"mean lateness / round (ms)",
			"first grants spread (ms)",
			"worst bucket's ratio from its first grant",
			"smallest spacing (ms)",
			"workerd CPU / grant (ms)",
		]),
		...runs.map(([runtime, { figures: f, pacing, workerdCpuMsPerGrant }]) =>
			row([
				label(runtime),
				f.shards,
				f.maxConcurrency,
				pacing,
				f.legalMinimumMs,
				f.makespanMs,
				ratio(f.makespanRatio),
				ms(f.meanLatenessPerRoundMs, 2),
				f.startSpreadMs,
				ratio(f.worstBucketRatio),
				f.smallestSpacingMs ?? "–",
				ms(workerdCpuMsPerGrant, 2),
			]),
		),
	];
}

/** Scenario 1 with one column per runtime for each figure that differs between them. */
function sideBySideStartup(results: RuntimeResults[]): string[] {
	const first = results[0];
	if (!first) return [];
	const columns = (name: string) => results.map((r) => `${name}: ${label(r.runtime)}`);
	return [
		...header([
			"shards",
			"max_concurrency",
			"legal minimum (ms)",
			...columns("makespan_ratio"),
			...columns("worst bucket's ratio"),
			...columns("workerd CPU / grant (ms)"),
		]),
		...first.startup.map(({ figures: f }, index) => {
			const runs = results.map((r) => r.startup[index]);
			return row([
				f.shards,
				f.maxConcurrency,
				f.legalMinimumMs,
				...runs.map((run) => ratio(run?.figures.makespanRatio)),
				...runs.map((run) => ratio(run?.figures.worstBucketRatio)),
				...runs.map((run) => ms(run?.workerdCpuMsPerGrant, 2)),
			]);
		}),
	];
}

function jitterRows(runtime: Runtime, pacing: string, all: Distribution, steady: Distribution): string[] {
	return [all, steady].map((d, index) =>
		row([
			label(runtime),
			index === 0 ? pacing : `${pacing}, from 3rd grant`,
			d.count,
			d.p50,
			d.p99,
			d.max,
			ms(d.mean, 2),
		]),
	);
}

interface Goal {
	goal: string;
	target: string;
	measured: string;
	met: boolean;
}

function goalsOf(r: RuntimeResults, intervalMs: number): Goal[] {
	const { startup, jitter, capacity, takeover } = r;
	const worst = worstStartupRatio(startup);
	const smallest = Math.min(
		...[...startup, ...r.alarmOnly].flatMap((run) => run.figures.smallestSpacingMs ?? []),
		...capacity.flatMap((run) => run.smallestSpacingMs ?? []),
		...(takeover?.figures.smallestSpacingMs != null ? [takeover.figures.smallestSpacingMs] : []),
	);
	const worstBucket = Math.max(...startup.map((run) => run.figures.worstBucketRatio ?? 0));
	const goals: Goal[] = [
		{
			goal: "start-up pacing: worst bucket's ratio from its first grant (worst run)",
			target: `≤ ${targets.makespanRatio}`,
			measured: ratio(worstBucket),
			met: worstBucket <= targets.makespanRatio,
		},
		{
			goal: "start-up makespan_ratio (worst run)",
			target: `≤ ${targets.makespanRatio}`,
			measured: ratio(worst),
			met: worst !== null && worst <= targets.makespanRatio,
		},
		{
			goal: "grant jitter p99",
			target: `≤ ${targets.jitterP99Ms} ms`,
			measured: `${jitter.timer.p99} ms`,
			met: jitter.timer.p99 <= targets.jitterP99Ms,
		},
		{
			goal: "grant jitter p99, from each bucket's 3rd grant on",
			target: `≤ ${targets.jitterP99Ms} ms`,
			measured: `${jitter.timerSteady.p99} ms`,
			met: jitter.timerSteady.p99 <= targets.jitterP99Ms,
		},
		{
			goal: "smallest spacing in any bucket",
			target: `≥ ${intervalMs} ms`,
			measured: `${smallest} ms`,
			met: smallest >= intervalMs,
		},
		{
			goal: "capacity: all granted, in order, none lost",
			target: "0 lost / refused / out of order",
			measured: capacity.map((run) => `${run.lost} / ${run.refused} / ${run.outOfOrder}`).join("; "),
			met: capacity.every((run) => run.lost + run.refused + run.outOfOrder === 0),
		},
	];
	if (takeover) {
		const t = takeover.figures.makespanRatio;
		goals.push({
			goal: "takeover under retries: makespan_ratio, order kept",
			target: `≤ ${targets.takeoverMakespanRatio}, 0 out of order`,
			measured: `${ratio(t)}, ${takeover.figures.outOfOrder} out of order`,
			met: t !== null && t <= targets.takeoverMakespanRatio && takeover.figures.outOfOrder === 0,
		});
	}
	return goals;
}

/** The goals, a pair of columns (measured, met) per runtime. */
function goalsTable(results: RuntimeResults[], intervalMs: number): string[] {
	const perRuntime = results.map((r) => goalsOf(r, intervalMs));
	const rows = (perRuntime[0] ?? []).map((goal, index) =>
		row([
			goal.goal,
			goal.target,
			...perRuntime.flatMap((goals) => {
				const g = goals[index];
				return g ? [g.measured, g.met ? "yes" : "**no**"] : ["–", "–"];
			}),
		]),
	);
	return [...header(["goal", "target", ...results.flatMap((r) => [label(r.runtime), "met"])]), ...rows];
}

export function markdownReport(results: BenchResults): string {
	const all = results.runtimes;
	const lines: string[] = [
		`# Bench results${results.smoke ? " (smoke)" : ""}`,
		"",
		`Run ${results.startedAt} on ${results.machine.cpus} × ${results.machine.cpuModel}, Node ${results.machine.node};` +
			` load average ${results.machine.loadAverageAtStart} at the start; interval I = ${results.intervalMs} ms.` +
			` Runtimes: ${all.map((r) => runtimeNotes[r.runtime]).join("; ")}; each configuration under one, then the other.` +
			" Times are the server's `granted_at`.",
		"",
		"## Goals",
		"",
		...goalsTable(all, results.intervalMs),
		"",
		"## 1. Start-up makespan against the legal minimum",
		"",
		"All shards ask at once; the legal minimum is `(ceil(N / C) - 1) × I`; makespan is the last grant minus the first." +
			" Locally all requests pass one workerd thread (a few ms of CPU each), so the first grants of the buckets spread over" +
			" tens of ms when many shards ask at once; the worst bucket's ratio, from its own first grant, is the pacing alone.",
		"",
	];
	if (all.length > 1) lines.push(...sideBySideStartup(all), "", "Each run in full:", "");
	lines.push(...startupTable(interleaved(all, (r) => r.startup)));
	const alarmOnly = interleaved(all, (r) => r.alarmOnly);
	if (alarmOnly.length > 0) {
		lines.push(
			"",
			"The same with the object paced by its alarm only (the design before the timer; bench Worker, `BENCH_TIMER=off`):",
			"",
			...startupTable(alarmOnly),
		);
	}
	lines.push(
		"",
		"## 2. Grant jitter",
		"",
		"For each grant after the first in its bucket: how long after its due time (previous grant + I) it came;" +
			" and the same from each bucket's third grant on (locally the round after the first grants comes late while the" +
			" one workerd thread still accepts the burst of requests).",
		"",
		...header(["runtime", "pacing", "grants", "p50 (ms)", "p99 (ms)", "max (ms)", "mean (ms)"]),
		...all.flatMap(({ runtime, jitter }) => [
			...jitterRows(runtime, "timer + alarm", jitter.timer, jitter.timerSteady),
			...(jitter.alarmOnly.count > 0
				? jitterRows(runtime, "alarm only", jitter.alarmOnly, jitter.alarmOnlySteady)
				: []),
		]),
	);
	const overheads = all.flatMap((r) => (r.overhead ? [[r.runtime, r.overhead] as const] : []));
	if (overheads.length > 0) {
		lines.push(
			"",
			"## 3. Overhead",
			"",
			`${overheads[0]?.[1].pairs} pairs, one after the other: a request to an idle bucket (granted at once) and \`GET /_/health\`, client-side latency.`,
			"",
			...header(["runtime", "route", "p50 (ms)", "p99 (ms)", "max (ms)", "mean (ms)"]),
			...overheads.flatMap(([runtime, o]) => [
				latencyRow(runtime, `grant, idle bucket (${o.grantsThatWaited} waited)`, o.grantMs),
				latencyRow(runtime, "`GET /_/health`", o.healthMs),
			]),
			"",
			`Ratio of medians (grant / health): ${overheads.map(([runtime, o]) => `${label(runtime)} ${o.ratioOfMedians.toFixed(2)}`).join("; ")}.`,
		);
	}
	lines.push(
		"",
		"## 4. Capacity",
		"",
		"Measured at the object level: the bench's Worker (`bench/worker/`, never deployed) makes the waiters inside each queue object" +
			" with the same `acquire` the Worker calls, because local `wrangler dev` carries at most about 5,000 held HTTP requests" +
			" on this machine (and spends about 100 KB and much CPU per held RPC call). C = 16, I = 200 ms. CPU is the whole workerd" +
			" process's (Worker, objects, runtime), from full queues to the last grant; local workerd reports no per-request CPU.",
		"",
		...header([
			"runtime",
			"run",
			"granted",
			"refused",
			"lost",
			"out of order",
			"smallest spacing (ms)",
			"makespan / minimum (ms)",
			"makespan_ratio (worst queue)",
			"lateness p99 (ms)",
			"workerd CPU / grant (ms)",
			"heap when full (MB)",
			"workerd RSS when full (MB)",
		]),
		...interleaved(all, (r) => r.capacity).map(([runtime, run]) =>
			row([
				label(runtime),
				run.label,
				run.granted,
				run.refused,
				run.lost,
				run.outOfOrder,
				run.smallestSpacingMs ?? "–",
				`${run.worstMakespanMs} / ${run.legalMinimumMs}`,
				ratio(run.worstMakespanRatio),
				run.latenessMs.p99,
				ms(run.workerdCpuMsPerGrant, 3),
				mb(run.heapBytesWhenFull),
				mb(run.rssBytesWhenFull),
			]),
		),
	);
	const memories = all.filter((r) => r.memory.length > 0);
	if (memories.length > 0) {
		lines.push(
			"",
			"Memory of one queue object filling up (interval 10 min, so nothing is granted meanwhile). Heap: the isolate's V8 heap" +
				" in use from the inspector (workerd cannot be asked to collect garbage first, so it includes some garbage).",
			"",
			...header([
				"runtime",
				"waiting",
				"heap (MB)",
				"heap / waiter (bytes)",
				"workerd RSS (MB)",
				"RSS / waiter (bytes)",
			]),
			...memories.flatMap(({ runtime, memory }) => memoryRows(runtime, memory)),
		);
	}
	const takeovers = all.flatMap((r) => (r.takeover ? [[r.runtime, r.takeover] as const] : []));
	const firstTakeover = takeovers[0]?.[1];
	if (firstTakeover) {
		const f = firstTakeover.figures;
		lines.push(
			"",
			"## 5. Takeover under retries",
			"",
			`${f.shards} shards, C = ${f.maxConcurrency}, asking in shard order; each abandons its request after` +
				` ${firstTakeover.abandonAfterMs[0]}-${firstTakeover.abandonAfterMs[1]} ms and asks again for the same shard until granted` +
				" (local workerd reports no disconnects, so the abandoned request is still in line and the retry takes its place).",
			"",
			...header([
				"runtime",
				"retries",
				"legal minimum (ms)",
				"makespan (ms)",
				"makespan_ratio",
				"out of order",
				"smallest spacing (ms)",
			]),
			...takeovers.map(([runtime, { retries, figures }]) =>
				row([
					label(runtime),
					retries,
					figures.legalMinimumMs,
					figures.makespanMs,
					ratio(figures.makespanRatio),
					figures.outOfOrder,
					figures.smallestSpacingMs ?? "–",
				]),
			),
		);
	}
	return `${lines.join("\n")}\n`;
}

function memoryRows(runtime: Runtime, memory: MemorySample[]): string[] {
	const baseline = memory[0];
	return memory.map((sample) =>
		row([
			label(runtime),
			sample.waiting,
			mb(sample.heapBytes),
			sample.waiting > 0 && sample.heapBytes !== undefined && baseline?.heapBytes !== undefined
				? Math.round((sample.heapBytes - baseline.heapBytes) / sample.waiting)
				: "–",
			mb(sample.rssBytes),
			sample.waiting > 0 && baseline ? Math.round((sample.rssBytes - baseline.rssBytes) / sample.waiting) : "–",
		]),
	);
}

/** What makes the run fail: a spacing below the interval, or a waiter lost, refused or served out of order. */
export function failures(results: BenchResults): string[] {
	const found: string[] = [];
	for (const r of results.runtimes) {
		const at = label(r.runtime);
		for (const run of [...r.startup, ...r.alarmOnly]) {
			const f = run.figures;
			if (f.smallestSpacingMs !== null && f.smallestSpacingMs < results.intervalMs) {
				found.push(
					`${at}: start-up ${f.shards}/${f.maxConcurrency} (${run.pacing}): spacing ${f.smallestSpacingMs} ms`,
				);
			}
		}
		for (const run of r.capacity) {
			if (run.smallestSpacingMs !== null && run.smallestSpacingMs < results.intervalMs) {
				found.push(`${at}: capacity ${run.label}: spacing ${run.smallestSpacingMs} ms`);
			}
			if (run.lost + run.refused + run.outOfOrder > 0) {
				found.push(
					`${at}: capacity ${run.label}: ${run.lost} lost, ${run.refused} refused, ${run.outOfOrder} out of order`,
				);
			}
		}
		const takeover = r.takeover?.figures;
		if (takeover?.smallestSpacingMs != null && takeover.smallestSpacingMs < results.intervalMs) {
			found.push(`${at}: takeover: spacing ${takeover.smallestSpacingMs} ms`);
		}
	}
	return found;
}

/** `makespanRatio` → `makespan_ratio`, for the JSON file. */
export function snakeCaseKeys(value: unknown): unknown {
	if (Array.isArray(value)) return value.map(snakeCaseKeys);
	if (value === null || typeof value !== "object") return value;
	return Object.fromEntries(
		Object.entries(value).map(([key, inner]) => [
			key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
			snakeCaseKeys(inner),
		]),
	);
}
