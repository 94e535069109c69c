/** The bench's results: the goals, the Markdown tables, and what makes a run fail. */
import { type Distribution, distribution } from "./analysis.ts";
import { filesNeeded } from "./limits.ts";
import type { CapacityRun, MemorySample, Overhead, RepeatedFigures, StartupRun, Takeover } from "./scenarios.ts";
import { type Runtime, runtimeLabels } from "./servers.ts";

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

export interface Machine {
	cpus: number;
	cpuModel: string;
	node: string;
	loadAverageAtStart: number;
	/** The hard limit of open files (the servers inherit it). */
	openFilesLimit?: number;
}

interface RunResults {
	startedAt: string;
	smoke: boolean;
	/** The parts run (`--only`), when not all. */
	only?: string[];
	durationS: number;
	machine: Machine;
	/** The interval of scenarios 1-3, 5 and the many-queues case. */
	intervalMs: number;
	/** The interval of the one-queue burst cases. */
	burstIntervalMs: number;
	/** The largest burst over HTTP under plain workerd (10,000, or what the open files allow). */
	largestBurst: number;
	runtimes: RuntimeResults[];
}

export interface BenchResults extends RunResults {
	goals: Goal[];
}

/** One goal's result under one runtime; `met` is null when the case was not run there (`measured` says why). */
export interface GoalOutcome {
	measured: string;
	met: boolean | null;
}

export interface Goal {
	case: string;
	goal: string;
	outcomes: Partial<Record<Runtime, GoalOutcome>>;
}

/** The goals of the issue's table, and the bounds below which a measurement counts as the floor. */
export const targets = {
	idleOverHealth: 2,
	/** Where the floor alone is over `idleOverHealth`: a grant within this factor of the floor is the floor. */
	idleOverFloor: 1.25,
	cpuPerGrantAt16Ms: 0.5,
	cpuPerGrantAt4Ms: 0.7,
	/** Where a case's floor (its calls answered as an ideal queue's rounds) is over the two goals above, a grant within this factor of it is the floor. */
	cpuOverFloor: 1.25,
	worstBucketRatio: 1.003,
	makespanRatio: 1.003,
	burstLatenessP99Ms: 20,
	burstMakespanRatio: 1.02,
	manyQueuesRatio: 1.05,
};

const ms = (value: number | null | undefined, digits = 1) => (value == null ? "–" : value.toFixed(digits));
const ratio = (value: number | null | undefined) => (value == null ? "–" : value.toFixed(4));
const mb = (bytes: number | undefined) => (bytes === undefined ? "–" : (bytes / 1024 / 1024).toFixed(1));
const count = (value: number) => value.toLocaleString("en-US");
const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
const header = (cells: string[]) => [row(cells), row(cells.map(() => "---"))];
const label = (runtime: Runtime) => runtimeLabels[runtime];
const runtimeNotes: Record<Runtime, string> = {
	wrangler: "*wrangler dev* (`npm start`: workerd behind wrangler's proxy Worker, with its inspector attached)",
	workerd: "*plain workerd* (`npm run serve`: the same bundle, self-hosted, no proxy)",
};
const latencyRow = (runtime: Runtime, route: string, d: Distribution) =>
	row([label(runtime), route, ms(d.p50, 2), ms(d.p99, 2), ms(d.max, 2), ms(d.mean, 2)]);

/** `wrangler dev` carries about 5,000 held requests; a trial with 5,000 at once (100 × 50) had none answered in 300 s. */
const wranglerNotRun = "not run: `wrangler dev` carries at most about 5,000 held requests";
const wranglerManyNotRun =
	"not run: under `wrangler dev`, 5,000 held requests at once had no answer within 300 s (a trial run)";

function startupOf(r: RuntimeResults, shards: number, maxConcurrency: number): StartupRun | undefined {
	return r.startup.find((run) => run.figures.shards === shards && run.figures.maxConcurrency === maxConcurrency);
}

function capacityOf(r: RuntimeResults, method: CapacityRun["method"], queues: number, waiters: number) {
	return r.capacity.find((run) => run.method === method && run.queues === queues && run.waitersPerQueue === waiters);
}

const notRun = (why = "not run"): GoalOutcome => ({ measured: why, met: null });

/** The same goal under every runtime. */
function goal(results: RunResults, name: string, target: string, outcome: (r: RuntimeResults) => GoalOutcome): Goal {
	return {
		case: name,
		goal: target,
		outcomes: Object.fromEntries(results.runtimes.map((r) => [r.runtime, outcome(r)])),
	};
}

function overheadOutcome(r: RuntimeResults): GoalOutcome {
	const o = r.overhead;
	if (!o) return notRun();
	const [grant, health] = [o.grantMs.p50, o.healthMs.p50];
	const idleRatio = grant / health;
	const floor = o.probes?.floorMs.p50;
	if (floor === undefined) {
		return { measured: `${idleRatio.toFixed(2)} (${ms(grant, 2)} / ${ms(health, 2)} ms)`, met: idleRatio <= 2 };
	}
	const floorRatio = floor / health;
	const overFloor = grant / floor;
	return {
		measured:
			`${idleRatio.toFixed(2)} (${ms(grant, 2)} / ${ms(health, 2)} ms); floor ${ms(floor, 2)} ms =` +
			` ${floorRatio.toFixed(2)}x health, grant ${overFloor.toFixed(2)}x floor`,
		met:
			idleRatio <= targets.idleOverHealth ||
			(floorRatio > targets.idleOverHealth && overFloor <= targets.idleOverFloor),
	};
}

/** Met under `limitMs`, or within `targets.cpuOverFloor` of each case's floor where that is higher. */
function cpuOutcome(r: RuntimeResults, runs: (StartupRun | undefined)[], limitMs: number): GoalOutcome {
	const found = runs.filter((run): run is StartupRun => run !== undefined);
	if (found.length === 0) return notRun();
	const loads = [...new Set(found.map((run) => run.loadAverage))].join(" / ");
	const cpuMs = found.map((run) => medianOfRuns(run, "workerdCpuMsPerGrant") ?? run.workerdCpuMsPerGrant);
	const floorsMs = found.map(
		(run) =>
			r.overhead?.probes?.roundFloors.find(
				(floor) => floor.shards === run.figures.shards && floor.maxConcurrency === run.figures.maxConcurrency,
			)?.cpuMsPerCall,
	);
	const measured = `${cpuMs.map((value) => ms(value, 2)).join(" / ")} ms${runsNote(found)} (load ${loads})`;
	const floorsKnown = floorsMs.every((floor) => floor !== undefined);
	return {
		measured: floorsKnown
			? `${measured}; floor ${floorsMs.map((floor) => ms(floor, 2)).join(" / ")} ms, grant` +
				` ${cpuMs.map((value, index) => (value / (floorsMs[index] ?? value)).toFixed(2)).join(" / ")}x floor`
			: measured,
		met:
			found.length === runs.length &&
			cpuMs.every((value, index) => value <= Math.max(limitMs, targets.cpuOverFloor * (floorsMs[index] ?? 0))),
	};
}

/** A repeated case's median of one figure; the run's own figure when it ran once. */
function medianOfRuns(run: StartupRun | undefined, figure: keyof RepeatedFigures): number | null | undefined {
	if (!run) return undefined;
	const repeated: readonly (number | null)[] | undefined = run.repeats?.[figure];
	const values = repeated?.filter((value): value is number => value !== null);
	if (!values || values.length === 0)
		return figure === "workerdCpuMsPerGrant" ? run.workerdCpuMsPerGrant : run.figures[figure];
	return distribution(values).p50;
}

/** "median of N runs: a, b, c" for cases that ran more than once. */
function runsNote(runs: StartupRun[]): string {
	const counts = runs.map((run) => run.repeats?.workerdCpuMsPerGrant.length ?? 1);
	return counts.some((count) => count > 1) ? ` (medians of ${counts.join(" / ")} runs)` : "";
}

function ratioOutcome(values: (number | null | undefined)[], limit: number): GoalOutcome {
	if (values.every((value) => value === undefined)) return notRun();
	return {
		measured: values.map(ratio).join(" / "),
		met: values.every((value) => value != null && value <= limit),
	};
}

/** Where a burst's makespan went: its last bucket's lateness while the one thread still took requests in, and after. */
function lostWhileArriving(run: CapacityRun): string {
	if (!run.lastBucketLatenessMs) return "";
	const { whileArriving, after } = run.lastBucketLatenessMs;
	const busy = run.threadBusy === null ? "" : ` (workerd's busiest thread ${percent(run.threadBusy)} busy then)`;
	return `; its last bucket ${whileArriving} ms late in all while requests came in${busy}, ${after} ms after`;
}

const percent = (share: number) => `${Math.round(share * 100)}%`;

function burstOutcome(run: CapacityRun | undefined, whyNot: string): GoalOutcome {
	if (!run) return notRun(whyNot);
	const total = run.queues * run.waitersPerQueue;
	return {
		measured:
			`${count(run.granted)} / ${count(total)} granted; p99 ${run.latenessMs.p99} ms;` +
			` ${ratio(run.worstMakespanRatio)} (requests in over ${ms((run.arrivalSpreadMs ?? 0) / 1000, 1)} s;` +
			` ${ratio(run.worstRatioGivenArrivals)} given arrivals)` +
			lostWhileArriving(run),
		met:
			run.granted === total &&
			run.lost + run.refused + run.outOfOrder === 0 &&
			run.latenessMs.p99 <= targets.burstLatenessP99Ms &&
			run.worstMakespanRatio !== null &&
			run.worstMakespanRatio <= targets.burstMakespanRatio,
	};
}

/** The runs' smallest spacing in each bucket against each run's own interval. */
function spacingOutcome(r: RuntimeResults): GoalOutcome {
	const spacings = [
		...[...r.startup, ...r.alarmOnly].map((run) => [run.figures.smallestSpacingMs, run.figures.intervalMs] as const),
		...r.capacity.map((run) => [run.smallestSpacingMs, run.intervalMs] as const),
		...(r.takeover ? [[r.takeover.figures.smallestSpacingMs, r.takeover.figures.intervalMs] as const] : []),
	].filter((pair): pair is readonly [number, number] => pair[0] !== null);
	const byInterval = new Map<number, number>();
	for (const [spacing, interval] of spacings) {
		byInterval.set(interval, Math.min(spacing, byInterval.get(interval) ?? spacing));
	}
	return {
		measured: [...byInterval]
			.sort(([a], [b]) => b - a)
			.map(([interval, spacing]) => `${spacing} ms at I = ${interval} ms`)
			.join("; "),
		met: spacings.every(([spacing, interval]) => spacing >= interval),
	};
}

const cpuGoal = (limitMs: number) =>
	`≤ ${limitMs} ms; or, where the floor (the same calls answered as an ideal queue grants them,` +
	` max_concurrency at a time and one interval apart, a round one timer and one committed row, none of the` +
	` queue's work: CPU per call) is itself over that, ≤ ${targets.cpuOverFloor}x the floor`;

function computeGoals(results: RunResults): Goal[] {
	const burst = results.largestBurst;
	const burstCase =
		burst >= 10_000
			? "10,000 shards waiting over HTTP in one queue, 16 buckets, 50 ms, self-hosted"
			: `${count(burst)} shards waiting over HTTP in one queue, 16 buckets, 50 ms, self-hosted (10,000 needs` +
				` about ${count(filesNeeded(10_000))} open files: workerd holds two per connection; the hard limit here is` +
				` ${count(results.machine.openFilesLimit ?? 0)})`;
	const burstGoal = `all granted, p99 lateness ≤ ${targets.burstLatenessP99Ms} ms, makespan ≤ ${targets.burstMakespanRatio}x`;
	return [
		goal(
			results,
			"idle-bucket grant / `GET /_/health`, same process (medians)",
			`≤ ${targets.idleOverHealth}x; or, where the floor (a call into the object that commits one row before` +
				` answering) is itself over ${targets.idleOverHealth}x, ≤ ${targets.idleOverFloor}x the floor`,
			overheadOutcome,
		),
		goal(results, "CPU per grant, 256 shards at max_concurrency 16", cpuGoal(targets.cpuPerGrantAt16Ms), (r) =>
			cpuOutcome(r, [startupOf(r, 256, 16)], targets.cpuPerGrantAt16Ms),
		),
		goal(results, "CPU per grant, 64 / 256 shards at max_concurrency 4", cpuGoal(targets.cpuPerGrantAt4Ms), (r) =>
			cpuOutcome(r, [startupOf(r, 64, 4), startupOf(r, 256, 4)], targets.cpuPerGrantAt4Ms),
		),
		goal(
			results,
			"worst bucket, from its own first grant, 256 / 16 (median of the runs)",
			`≤ ${targets.worstBucketRatio}`,
			(r) => ratioOutcome([medianOfRuns(startupOf(r, 256, 16), "worstBucketRatio")], targets.worstBucketRatio),
		),
		goal(
			results,
			"makespan / legal minimum given the arrivals, 64 / 4 and 256 / 4 (medians of the runs)",
			`≤ ${targets.makespanRatio}`,
			(r) => {
				const runs = [startupOf(r, 64, 4), startupOf(r, 256, 4)];
				const outcome = ratioOutcome(
					runs.map((run) => medianOfRuns(run, "ratioGivenArrivals")),
					targets.makespanRatio,
				);
				if (outcome.met === null) return outcome;
				const fromFirstGrant = runs.map((run) => ratio(medianOfRuns(run, "makespanRatio"))).join(" / ");
				const spreads = runs.map((run) => run?.figures.startSpreadMs ?? "–").join(" / ");
				return {
					...outcome,
					measured: `${outcome.measured} (from the first grant ${fromFirstGrant}; the buckets' first grants, each at its first request, spread over ${spreads} ms)`,
				};
			},
		),
		goal(results, "4,000 shards waiting over HTTP in one queue, 16 buckets, 50 ms", burstGoal, (r) =>
			burstOutcome(capacityOf(r, "http", 1, 4_000), "not run"),
		),
		...(burst > 4_000
			? [
					goal(results, burstCase, burstGoal, (r) =>
						burstOutcome(
							r.runtime === "wrangler" ? undefined : capacityOf(r, "http", 1, burst),
							r.runtime === "wrangler" ? wranglerNotRun : "not run",
						),
					),
				]
			: []),
		goal(
			results,
			"100 queues × 50 waiters at once, over HTTP: worst queue's last grant after its first arrival, over the least possible given its arrivals",
			`≤ ${targets.manyQueuesRatio}x`,
			(r) => {
				const run = capacityOf(r, "http", 100, 50);
				if (!run) return notRun(r.runtime === "wrangler" ? wranglerManyNotRun : "not run");
				return {
					measured: `${ratio(run.worstRatioGivenArrivals)}; p99 lateness ${run.latenessMs.p99} ms${lostWhileArriving(run)}`,
					met: run.worstRatioGivenArrivals !== null && run.worstRatioGivenArrivals <= targets.manyQueuesRatio,
				};
			},
		),
		goal(
			results,
			"100 queues × 50 waiters at once, object level: worst queue's makespan over its legal minimum",
			`≤ ${targets.manyQueuesRatio}x`,
			(r) => {
				const run = capacityOf(r, "object", 100, 50);
				if (!run) return notRun();
				return {
					measured:
						`${ratio(run.worstMakespanRatio)}; p99 lateness ${run.latenessMs.p99} ms` +
						(run.threadBusy === null
							? ""
							: `; workerd's busiest thread ${percent(run.threadBusy)} busy while they drained`),
					met: run.worstMakespanRatio !== null && run.worstMakespanRatio <= targets.manyQueuesRatio,
				};
			},
		),
		goal(results, "two grants of one bucket, every run", "never closer than the interval", spacingOutcome),
		goal(
			results,
			"every waiter of the capacity runs granted once, in its arrival order",
			"0 lost / refused / out of order",
			(r) => ({
				measured: `${r.capacity.reduce((sum, run) => sum + run.lost, 0)} / ${r.capacity.reduce((sum, run) => sum + run.refused, 0)} / ${r.capacity.reduce((sum, run) => sum + run.outOfOrder, 0)}`,
				met: r.capacity.every((run) => run.lost + run.refused + run.outOfOrder === 0),
			}),
		),
		goal(
			results,
			"takeover under retries (64 shards, C = 1): first grants in the order the object first saw the shards",
			"0 FIFO violations at the object",
			(r) => {
				const seen = r.takeover?.object;
				if (!r.takeover || !seen) return notRun();
				return {
					measured:
						`${seen.fifoViolations}; makespan ${ratio(r.takeover.figures.makespanRatio)},` +
						` ${r.takeover.figures.outOfOrder} out of order at the client, ${seen.grantsToAbandonedRequests} grant(s) to an abandoned request`,
					met: seen.fifoViolations === 0,
				};
			},
		),
	];
}

/** The results with their goals. */
export function withGoals(results: RunResults): BenchResults {
	return { ...results, goals: computeGoals(results) };
}

/** Every goal missed under a runtime, as a line. */
export function missedGoals(results: BenchResults): string[] {
	return results.goals.flatMap((g) =>
		Object.entries(g.outcomes).flatMap(([runtime, outcome]) =>
			outcome?.met === false
				? [`goal missed under ${label(runtime as Runtime)}: ${g.case}: ${outcome.measured} (goal ${g.goal})`]
				: [],
		),
	);
}

/** The goals, a pair of columns (measured, met) per runtime, side by side. */
function goalsTable(results: BenchResults): string[] {
	const shown = results.runtimes.map((r) => r.runtime);
	const met = (outcome: GoalOutcome | undefined) => (outcome?.met == null ? "–" : outcome.met ? "yes" : "**no**");
	// A smoke or partial run leaves out the cases it did not run.
	const runHere = (g: Goal) => Object.values(g.outcomes).some((outcome) => outcome?.met != null);
	const goals = results.smoke || results.only ? results.goals.filter(runHere) : results.goals;
	return [
		...header(["case", "goal", ...shown.flatMap((runtime) => [label(runtime), "met"])]),
		...goals.map((g) =>
			row([
				g.case,
				g.goal,
				...shown.flatMap((runtime) => [g.outcomes[runtime]?.measured ?? "–", met(g.outcomes[runtime])]),
			]),
		),
	];
}

function machineLine(results: BenchResults): string {
	const m = results.machine;
	const files = m.openFilesLimit === undefined ? "" : `, open files ${count(m.openFilesLimit)} (hard limit)`;
	return (
		`Run ${results.startedAt} (${Math.round(results.durationS / 60)} min) on ${m.cpus} × ${m.cpuModel}` +
		`${files}, Node ${m.node}; load average ${m.loadAverageAtStart} at the start.`
	);
}

/** The block `npm run bench` writes into bench/README.md: the machine, and the goals of both runtimes. */
export function goalsMarkdown(results: BenchResults): string {
	return [
		`${machineLine(results)} CPU per grant depends on the machine and on what else runs on it (the load` +
			" average as each batch began is beside it). Written by `npm run bench` (bench/run.ts); every table of the" +
			" run: [results/latest.md](results/latest.md).",
		"",
		...goalsTable(results),
		"",
	].join("\n");
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
			"load average",
		]),
		...runs.map(([runtime, { figures: f, pacing, workerdCpuMsPerGrant, loadAverage }]) =>
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
				loadAverage,
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

function overheadSection(all: RuntimeResults[]): string[] {
	const overheads = all.flatMap((r) => (r.overhead ? [[r.runtime, r.overhead] as const] : []));
	if (overheads.length === 0) return [];
	return [
		"",
		"## 3. Overhead",
		"",
		`${overheads[0]?.[1].rounds} rounds, one request to each route in turn (the order rotating), client-side latency, on the` +
			" bench's Worker (the project's Worker behind two path checks). Besides a request to an idle bucket (granted at once)" +
			" and `GET /_/health`, the bench Worker's probes show what a grant cannot avoid: *plain*, a JSON answer from the" +
			" Worker without the app (Hono, middleware); *RPC*, a call into a queue object that writes nothing; *floor*, a call" +
			" into a queue object that answers once one row is committed (the output gate holds the answer until SQLite has" +
			" it, as it holds a grant).",
		"",
		...header(["runtime", "route", "p50 (ms)", "p99 (ms)", "max (ms)", "mean (ms)"]),
		...overheads.flatMap(([runtime, o]) => [
			latencyRow(runtime, `grant, idle bucket (${o.grantsThatWaited} waited)`, o.grantMs),
			latencyRow(runtime, "`GET /_/health`", o.healthMs),
			...(o.probes
				? [
						latencyRow(runtime, "probe: plain", o.probes.plainMs),
						latencyRow(runtime, "probe: RPC, no write", o.probes.rpcMs),
						latencyRow(runtime, "probe: floor, RPC + commit", o.probes.floorMs),
					]
				: []),
		]),
		"",
		`Ratio of medians (grant / health): ${overheads.map(([runtime, o]) => `${label(runtime)} ${o.ratioOfMedians.toFixed(2)}`).join("; ")}.` +
			(overheads.some(([, o]) => o.probes)
				? ` Floor / health: ${overheads.map(([runtime, o]) => `${label(runtime)} ${o.probes ? (o.probes.floorMs.p50 / o.healthMs.p50).toFixed(2) : "–"}`).join("; ")}.` +
					" workerd's CPU per call: " +
					overheads
						.map(([runtime, o]) =>
							o.probes
								? `${label(runtime)}: RPC answered at once (256 at once) ${ms(o.probes.rpcCpuMsPerRequest, 2)} ms;` +
									` answered as an ideal queue's rounds (the floor of a start-up's grants) ${o.probes.roundFloors.map((floor) => `${floor.shards} / ${floor.maxConcurrency} ${ms(floor.cpuMsPerCall, 2)} ms`).join(", ")};` +
									` a wake-up of an object (a timer, then a commit) ${ms(o.probes.wakeUpCpuMs, 2)} ms`
								: `${label(runtime)}: –`,
						)
						.join("; ") +
					"."
				: ""),
	];
}

function capacitySection(all: RuntimeResults[]): string[] {
	return [
		"",
		"## 4. Capacity",
		"",
		"*Object level*: the bench's Worker (`bench/worker/`, never deployed) makes each queue's waiters inside its object" +
			" with the same `acquire` the Worker calls, all at one instant. *HTTP*: one held request per waiter, all sent at" +
			" once (queue by queue) on connections opened beforehand; one workerd thread takes them in one by one, so they" +
			" arrive over seconds: the server's clock (`granted_at - waited_ms`) gives each one's arrival. Lateness of a grant:" +
			" after its arrival (a bucket's first) or after the previous grant + I, whichever is later. *Given arrivals*: the" +
			" last grant after the first arrival, over the least possible for those arrivals (each bucket in arrival order," +
			" every grant at max(arrival, previous + I)). C = 16. CPU is the whole workerd process's: object level, from full" +
			" queues to the last grant; HTTP, from the first request to the last answer. wrangler dev carries at most about" +
			" 5,000 held requests; plain workerd holds two open files per connection.",
		"",
		...header([
			"runtime",
			"run",
			"how",
			"I (ms)",
			"granted",
			"refused / failed",
			"lost",
			"out of order",
			"smallest spacing (ms)",
			"makespan / minimum (ms)",
			"makespan_ratio (worst queue)",
			"requests in over (ms)",
			"given arrivals (worst queue)",
			"lateness p50 / p99 / max (ms)",
			"workerd CPU / grant (ms)",
			"heap when full (MB)",
			"workerd RSS before / when full (MB)",
		]),
		...interleaved(all, (r) => r.capacity).map(([runtime, run]) =>
			row([
				label(runtime),
				run.label,
				run.method === "http" ? "HTTP" : "object level",
				run.intervalMs,
				run.granted,
				run.firstFailure ? `${run.refused} (${run.firstFailure.replace(/\|/g, "/")})` : run.refused,
				run.lost,
				run.outOfOrder,
				run.smallestSpacingMs ?? "–",
				`${run.worstMakespanMs} / ${run.legalMinimumMs}`,
				ratio(run.worstMakespanRatio),
				run.arrivalSpreadMs ?? "–",
				ratio(run.worstRatioGivenArrivals),
				`${run.latenessMs.p50} / ${run.latenessMs.p99} / ${run.latenessMs.max}`,
				ms(run.workerdCpuMsPerGrant, 3),
				mb(run.heapBytesWhenFull),
				`${mb(run.rssBytesBefore)} / ${mb(run.rssBytesWhenFull)}`,
			]),
		),
	];
}

function takeoverSection(all: RuntimeResults[]): string[] {
	const takeovers = all.flatMap((r) => (r.takeover ? [[r.runtime, r.takeover] as const] : []));
	const firstTakeover = takeovers[0]?.[1];
	if (!firstTakeover) return [];
	const f = firstTakeover.figures;
	return [
		"",
		"## 5. Takeover under retries",
		"",
		`${f.shards} shards, C = ${f.maxConcurrency}, asking in shard order 3 ms apart; each abandons its request after` +
			` ${firstTakeover.abandonAfterMs[0]}-${firstTakeover.abandonAfterMs[1]} ms and asks again for the same shard until granted` +
			" (local workerd reports no disconnects, so the abandoned request is still in line and the retry takes its place)." +
			" On the bench's Worker, which logs what the object saw: *arrival inversions*, first requests that reached the" +
			" object out of shard order; *FIFO violations*, first grants out of the order the object first saw the shards;" +
			" *grants to abandoned requests*, grants whose answer was still on its way when the client gave up (the retry" +
			" then finds the shard granted and joins the back of the line: the client sees it out of order).",
		"",
		...header([
			"runtime",
			"retries",
			"legal minimum (ms)",
			"makespan (ms)",
			"makespan_ratio",
			"out of order (client)",
			"arrival inversions",
			"FIFO violations",
			"grants to abandoned requests (ms before the client's timeout)",
			"smallest spacing (ms)",
		]),
		...takeovers.map(([runtime, { retries, figures, object }]) =>
			row([
				label(runtime),
				retries,
				figures.legalMinimumMs,
				figures.makespanMs,
				ratio(figures.makespanRatio),
				figures.outOfOrder,
				object?.arrivalInversions ?? "–",
				object?.fifoViolations ?? "–",
				object
					? `${object.grantsToAbandonedRequests}${object.abandonedGrants.length > 0 ? ` (${object.abandonedGrants.map((g) => `shard ${g.shard}: ${g.grantedBeforeTimeoutMs}`).join(", ")})` : ""}`
					: "–",
				figures.smallestSpacingMs ?? "–",
			]),
		),
	];
}

export function markdownReport(results: BenchResults): string {
	const all = results.runtimes;
	const lines: string[] = [
		`# Bench results${results.smoke ? " (smoke)" : ""}`,
		"",
		`${machineLine(results)} Interval I = ${results.intervalMs} ms (${results.burstIntervalMs} ms in the one-queue` +
			` bursts). Runtimes: ${all.map((r) => runtimeNotes[r.runtime]).join("; ")}; each configuration under one, then` +
			" the other. Times are the server's `granted_at`.",
		"",
		"## Goals",
		"",
		...goalsTable(results),
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
			"The same with the object paced by its alarm only (bench Worker, `BENCH_TIMER=off`): the backstop of an object that lost its timer, which comes `alarmBackstopMs` (1 s) after each due grant by design, so each round is about 1 s late:",
			"",
			...startupTable(alarmOnly),
		);
	}
	lines.push(
		"",
		"## 2. Grant jitter",
		"",
		"For each grant after the first in its bucket: how long after its due time (previous grant + I, or its arrival" +
			" when later) it came;" +
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
		...overheadSection(all),
		...capacitySection(all),
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
	lines.push(...takeoverSection(all));
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

/**
 * What makes any run fail, the smoke run too: a spacing below the interval, or
 * a waiter lost, refused or served out of its arrival order.
 */
export function failures(results: BenchResults): string[] {
	const found: string[] = [];
	for (const r of results.runtimes) {
		const at = label(r.runtime);
		for (const run of [...r.startup, ...r.alarmOnly]) {
			const f = run.figures;
			if (f.smallestSpacingMs !== null && f.smallestSpacingMs < f.intervalMs) {
				found.push(
					`${at}: start-up ${f.shards}/${f.maxConcurrency} (${run.pacing}): spacing ${f.smallestSpacingMs} ms`,
				);
			}
		}
		for (const run of r.capacity) {
			const how = run.method === "http" ? "over HTTP" : "object level";
			if (run.smallestSpacingMs !== null && run.smallestSpacingMs < run.intervalMs) {
				found.push(`${at}: capacity ${run.label}, ${how}: spacing ${run.smallestSpacingMs} ms`);
			}
			if (run.lost + run.refused + run.outOfOrder > 0) {
				found.push(
					`${at}: capacity ${run.label}, ${how}: ${run.lost} lost, ${run.refused} refused or failed` +
						`${run.firstFailure ? ` (${run.firstFailure})` : ""}, ${run.outOfOrder} out of order`,
				);
			}
		}
		const takeover = r.takeover?.figures;
		if (takeover?.smallestSpacingMs != null && takeover.smallestSpacingMs < takeover.intervalMs) {
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
