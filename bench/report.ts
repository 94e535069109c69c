/** The bench's results: the Markdown tables, the goals, and what makes a run fail. */
import type { Distribution } from "./analysis.ts";
import type { CapacityRun, MemorySample, Overhead, StartupRun, Takeover } from "./scenarios.ts";

export interface BenchResults {
	startedAt: string;
	smoke: boolean;
	machine: { cpus: number; cpuModel: string; node: string; loadAverageAtStart: number };
	intervalMs: number;
	startup: StartupRun[];
	jitter: { timer: Distribution; timerSteady: Distribution; alarmOnly: Distribution; alarmOnlySteady: Distribution };
	alarmOnly: StartupRun[];
	overhead?: Overhead;
	capacity: CapacityRun[];
	memory: MemorySample[];
	takeover?: Takeover;
}

export const goals = { makespanRatio: 1.005, jitterP99Ms: 5, takeoverMakespanRatio: 1.02 };

const ms = (value: number | null | undefined, digits = 1) => (value == null ? "–" : value.toFixed(digits));
const ratio = (value: number | null | undefined) => (value == null ? "–" : value.toFixed(4));
const mb = (bytes: number | undefined) => (bytes === undefined ? "–" : (bytes / 1024 / 1024).toFixed(1));
const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
const latencyRow = (route: string, d: Distribution) =>
	row([route, ms(d.p50, 2), ms(d.p99, 2), ms(d.max, 2), ms(d.mean, 2)]);

/** Every scenario-1 run's largest makespan ratio (runs of one round have none). */
function worstStartupRatio(runs: StartupRun[]): number | null {
	const ratios = runs.flatMap((run) => (run.figures.makespanRatio === null ? [] : [run.figures.makespanRatio]));
	return ratios.length > 0 ? Math.max(...ratios) : null;
}

function startupTable(runs: StartupRun[]): string[] {
	return [
		row([
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
		row(Array(11).fill("---")),
		...runs.map(({ figures: f, pacing, workerdCpuMsPerGrant }) =>
			row([
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

function jitterRows(pacing: string, all: Distribution, steady: Distribution): string[] {
	return [all, steady].map((d, index) =>
		row([index === 0 ? pacing : `${pacing}, from 3rd grant`, d.count, d.p50, d.p99, d.max, ms(d.mean, 2)]),
	);
}

export function markdownReport(results: BenchResults): string {
	const { startup, jitter, overhead, capacity, memory, takeover } = results;
	const lines: string[] = [
		`# Bench results${results.smoke ? " (smoke)" : ""}`,
		"",
		`Run ${results.startedAt} on ${results.machine.cpus} × ${results.machine.cpuModel}, Node ${results.machine.node},` +
			` local \`wrangler dev\` (workerd); load average ${results.machine.loadAverageAtStart} at the start;` +
			` interval I = ${results.intervalMs} ms. Times are the server's \`granted_at\`.`,
		"",
		"## Goals",
		"",
		row(["goal", "target", "measured", "met"]),
		row(["---", "---", "---", "---"]),
	];
	const worst = worstStartupRatio(startup);
	const smallest = Math.min(
		...[...startup, ...results.alarmOnly].flatMap((run) => run.figures.smallestSpacingMs ?? []),
		...capacity.flatMap((run) => run.smallestSpacingMs ?? []),
		...(takeover?.figures.smallestSpacingMs != null ? [takeover.figures.smallestSpacingMs] : []),
	);
	const met = (ok: boolean) => (ok ? "yes" : "**no**");
	const worstBucket = Math.max(...startup.map((run) => run.figures.worstBucketRatio ?? 0));
	lines.push(
		row([
			"start-up pacing: worst bucket's ratio from its first grant (worst run)",
			`≤ ${goals.makespanRatio}`,
			ratio(worstBucket),
			met(worstBucket <= goals.makespanRatio),
		]),
		row([
			"start-up makespan_ratio (worst run)",
			`≤ ${goals.makespanRatio}`,
			ratio(worst),
			met(worst !== null && worst <= goals.makespanRatio),
		]),
		row([
			"grant jitter p99",
			`≤ ${goals.jitterP99Ms} ms`,
			`${jitter.timer.p99} ms`,
			met(jitter.timer.p99 <= goals.jitterP99Ms),
		]),
		row([
			"grant jitter p99, from each bucket's 3rd grant on",
			`≤ ${goals.jitterP99Ms} ms`,
			`${jitter.timerSteady.p99} ms`,
			met(jitter.timerSteady.p99 <= goals.jitterP99Ms),
		]),
		row([
			"smallest spacing in any bucket",
			`≥ ${results.intervalMs} ms`,
			`${smallest} ms`,
			met(smallest >= results.intervalMs),
		]),
		row([
			"capacity: all granted, in order, none lost",
			"0 lost / refused / out of order",
			capacity.map((run) => `${run.lost} / ${run.refused} / ${run.outOfOrder}`).join("; "),
			met(capacity.every((run) => run.lost + run.refused + run.outOfOrder === 0)),
		]),
	);
	if (takeover) {
		const r = takeover.figures.makespanRatio;
		lines.push(
			row([
				"takeover under retries: makespan_ratio, order kept",
				`≤ ${goals.takeoverMakespanRatio}, 0 out of order`,
				`${ratio(r)}, ${takeover.figures.outOfOrder} out of order`,
				met(r !== null && r <= goals.takeoverMakespanRatio && takeover.figures.outOfOrder === 0),
			]),
		);
	}

	lines.push(
		"",
		"## 1. Start-up makespan against the legal minimum",
		"",
		"All shards ask at once; the legal minimum is `(ceil(N / C) - 1) × I`; makespan is the last grant minus the first." +
			" Locally all requests pass one workerd thread (a few ms of CPU each), so the first grants of the buckets spread over" +
			" tens of ms when many shards ask at once; the worst bucket's ratio, from its own first grant, is the pacing alone.",
		"",
		...startupTable(startup),
	);
	if (results.alarmOnly.length > 0) {
		lines.push(
			"",
			"The same with the object paced by its alarm only (the design before the timer; bench Worker, `BENCH_TIMER=off`):",
			"",
			...startupTable(results.alarmOnly),
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
		row(["pacing", "grants", "p50 (ms)", "p99 (ms)", "max (ms)", "mean (ms)"]),
		row(["---", "---", "---", "---", "---", "---"]),
		...jitterRows("timer + alarm", jitter.timer, jitter.timerSteady),
	);
	if (jitter.alarmOnly.count > 0) lines.push(...jitterRows("alarm only", jitter.alarmOnly, jitter.alarmOnlySteady));
	if (overhead) {
		const o = overhead;
		lines.push(
			"",
			"## 3. Overhead",
			"",
			`${o.pairs} pairs, one after the other: a request to an idle bucket (granted at once; ${o.grantsThatWaited} waited) and \`GET /_/health\`, client-side latency.`,
			"",
			row(["route", "p50 (ms)", "p99 (ms)", "max (ms)", "mean (ms)"]),
			row(["---", "---", "---", "---", "---"]),
			latencyRow("grant, idle bucket", o.grantMs),
			latencyRow("`GET /_/health`", o.healthMs),
			"",
			`Ratio of medians (grant / health): ${o.ratioOfMedians.toFixed(2)}.`,
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
		row([
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
		row(Array(12).fill("---")),
		...capacity.map((run) =>
			row([
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
	const baseline = memory[0];
	if (baseline) {
		lines.push(
			"",
			"Memory of one queue object filling up (interval 10 min, so nothing is granted meanwhile). Heap: the isolate's V8 heap" +
				" in use from the inspector (workerd cannot be asked to collect garbage first, so it includes some garbage).",
			"",
			row(["waiting", "heap (MB)", "heap / waiter (bytes)", "workerd RSS (MB)", "RSS / waiter (bytes)"]),
			row(["---", "---", "---", "---", "---"]),
			...memory.map((sample) =>
				row([
					sample.waiting,
					mb(sample.heapBytes),
					sample.waiting > 0 && sample.heapBytes !== undefined && baseline.heapBytes !== undefined
						? Math.round((sample.heapBytes - baseline.heapBytes) / sample.waiting)
						: "–",
					mb(sample.rssBytes),
					sample.waiting > 0 ? Math.round((sample.rssBytes - baseline.rssBytes) / sample.waiting) : "–",
				]),
			),
		);
	}
	if (takeover) {
		const f = takeover.figures;
		lines.push(
			"",
			"## 5. Takeover under retries",
			"",
			`${f.shards} shards, C = ${f.maxConcurrency}, asking in shard order; each abandons its request after` +
				` ${takeover.abandonAfterMs[0]}-${takeover.abandonAfterMs[1]} ms and asks again for the same shard until granted` +
				" (local `wrangler dev` reports no disconnects, so the abandoned request is still in line and the retry takes its place).",
			"",
			row([
				"retries",
				"legal minimum (ms)",
				"makespan (ms)",
				"makespan_ratio",
				"out of order",
				"smallest spacing (ms)",
			]),
			row(["---", "---", "---", "---", "---", "---"]),
			row([
				takeover.retries,
				f.legalMinimumMs,
				f.makespanMs,
				ratio(f.makespanRatio),
				f.outOfOrder,
				f.smallestSpacingMs ?? "–",
			]),
		);
	}
	return `${lines.join("\n")}\n`;
}

/** What makes the run fail: a spacing below the interval, or a waiter lost, refused or served out of order. */
export function failures(results: BenchResults): string[] {
	const found: string[] = [];
	for (const run of [...results.startup, ...results.alarmOnly]) {
		const f = run.figures;
		if (f.smallestSpacingMs !== null && f.smallestSpacingMs < results.intervalMs) {
			found.push(`start-up ${f.shards}/${f.maxConcurrency} (${run.pacing}): spacing ${f.smallestSpacingMs} ms`);
		}
	}
	for (const run of results.capacity) {
		if (run.smallestSpacingMs !== null && run.smallestSpacingMs < results.intervalMs) {
			found.push(`capacity ${run.label}: spacing ${run.smallestSpacingMs} ms`);
		}
		if (run.lost + run.refused + run.outOfOrder > 0) {
			found.push(`capacity ${run.label}: ${run.lost} lost, ${run.refused} refused, ${run.outOfOrder} out of order`);
		}
	}
	const takeover = results.takeover?.figures;
	if (takeover?.smallestSpacingMs != null && takeover.smallestSpacingMs < results.intervalMs) {
		found.push(`takeover: spacing ${takeover.smallestSpacingMs} ms`);
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
