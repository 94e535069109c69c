/** What the runtime reports about itself locally: workerd's RSS and CPU (/proc), the isolate's heap (inspector). */
import { readdir, readFile } from "node:fs/promises";
import { WebSocket } from "undici";
import type { QueueServer } from "./servers.ts";

/** The workerd processes in the server's process group. */
async function workerdPids(server: QueueServer): Promise<number[]> {
	const pids: number[] = [];
	for (const entry of await readdir("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = await readFile(`/proc/${entry}/stat`, "utf8");
			const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
			const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			if (comm === "workerd" && Number(fields[2]) === server.processGroupId) pids.push(Number(entry));
		} catch {
			// The process ended meanwhile.
		}
	}
	return pids;
}

export interface ProcessSample {
	rssBytes: number;
	cpuMs: number;
}

/**
 * RSS and CPU time (user + system) of the server's workerd processes together.
 * The CPU time is the scheduler's, in nanoseconds per thread (`schedstat`): the
 * process's `stat` counts 10 ms ticks, too coarse for a batch of 64 grants
 * (about 100 ms). workerd's threads live as long as the process.
 */
export async function sampleWorkerd(server: QueueServer): Promise<ProcessSample> {
	let rssBytes = 0;
	let totalCpuMs = 0;
	for (const pid of await workerdPids(server)) {
		try {
			const status = await readFile(`/proc/${pid}/status`, "utf8");
			rssBytes += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
			for (const cpuMs of (await threadCpuMs(pid)).values()) totalCpuMs += cpuMs;
		} catch {
			// The process or the thread ended meanwhile.
		}
	}
	return { rssBytes, cpuMs: totalCpuMs };
}

/** Each thread's CPU time so far (ms, from the scheduler's nanoseconds), by thread id. */
async function threadCpuMs(pid: number): Promise<Map<string, number>> {
	const cpuMs = new Map<string, number>();
	for (const thread of await readdir(`/proc/${pid}/task`)) {
		const schedstat = await readFile(`/proc/${pid}/task/${thread}/schedstat`, "utf8");
		cpuMs.set(thread, Number(schedstat.split(" ")[0]) / 1e6);
	}
	return cpuMs;
}

/** When it was taken, and each workerd thread's CPU time so far (ms), by thread id. */
export interface ThreadSample {
	atMs: number;
	cpuMsByThread: Map<string, number>;
}

async function sampleThreads(server: QueueServer): Promise<ThreadSample> {
	const cpuMsByThread = new Map<string, number>();
	for (const pid of await workerdPids(server)) {
		try {
			for (const [thread, cpuMs] of await threadCpuMs(pid)) cpuMsByThread.set(thread, cpuMs);
		} catch {
			// The process ended meanwhile.
		}
	}
	return { atMs: Date.now(), cpuMsByThread };
}

/**
 * Samples workerd's threads every `everyMs` until stopped: locally one thread
 * takes the requests in and runs every object, so how busy it was over a stretch
 * tells whether timers had to wait for it.
 */
export function sampleThreadsEvery(server: QueueServer, everyMs: number): { stop(): Promise<ThreadSample[]> } {
	const samples: ThreadSample[] = [];
	let stopped = false;
	const running = (async () => {
		while (!stopped) {
			samples.push(await sampleThreads(server));
			await new Promise((resolve) => setTimeout(resolve, everyMs));
		}
		samples.push(await sampleThreads(server));
	})();
	return {
		stop: async () => {
			stopped = true;
			await running;
			return samples;
		},
	};
}

/**
 * The busiest thread's CPU time over wall time between the samples around
 * `fromMs`..`toMs` (the last before the start, the first after the end); null
 * when fewer than two samples span it.
 */
export function busiestThreadShare(samples: ThreadSample[], fromMs: number, toMs: number): number | null {
	const first = samples.findLast((sample) => sample.atMs <= fromMs) ?? samples[0];
	const last = samples.find((sample) => sample.atMs >= toMs) ?? samples.at(-1);
	if (!first || !last || last.atMs <= first.atMs) return null;
	let busiestMs = 0;
	for (const [thread, cpuMs] of last.cpuMsByThread) {
		busiestMs = Math.max(busiestMs, cpuMs - (first.cpuMsByThread.get(thread) ?? 0));
	}
	return busiestMs / (last.atMs - first.atMs);
}

/**
 * The Worker isolate's V8 heap in use, through the DevTools protocol of the
 * server's inspector (the Worker and its objects share one isolate locally; workerd
 * does not take `HeapProfiler.collectGarbage`, so garbage not yet collected
 * counts too). Undefined without an inspector, or when it does not answer.
 */
export async function isolateHeapUsedBytes(server: QueueServer): Promise<number | undefined> {
	if (server.inspectorUrl === undefined) return undefined;
	try {
		const targets = (await (await fetch(`${server.inspectorUrl}/json`)).json()) as { webSocketDebuggerUrl: string }[];
		const target = targets[0];
		if (!target) return undefined;
		// The inspector proxy accepts local origins only.
		const socket = new WebSocket(target.webSocketDebuggerUrl, { headers: { origin: "http://localhost" } });
		await new Promise((resolve, reject) => {
			socket.addEventListener("open", resolve, { once: true });
			socket.addEventListener("error", reject, { once: true });
		});
		let nextId = 1;
		const call = (method: string) =>
			new Promise<Record<string, unknown>>((resolve, reject) => {
				const id = nextId++;
				const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 20_000);
				const onMessage = (event: { data: unknown }) => {
					const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown> };
					if (message.id !== id) return;
					clearTimeout(timer);
					socket.removeEventListener("message", onMessage);
					resolve(message.result ?? {});
				};
				socket.addEventListener("message", onMessage);
				socket.send(JSON.stringify({ id, method }));
			});
		try {
			const usage = await call("Runtime.getHeapUsage");
			return typeof usage.usedSize === "number" ? usage.usedSize : undefined;
		} finally {
			socket.close();
		}
	} catch {
		return undefined;
	}
}
