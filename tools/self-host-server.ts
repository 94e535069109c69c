/**
 * Starts `npm run serve` for tests and the bench, as `dev-server.ts` starts
 * `wrangler dev`: a free port on loopback, its own state folder, and a process
 * group (npm, the launcher, workerd) killed as a whole when stopped. Also picks
 * either runtime by name, for what runs against both.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DevServer, freePort, startDevServer } from "./dev-server.ts";

/** What tests and the bench need of a running queue, under either runtime. */
export interface QueueServer {
	url: string;
	/** The isolate's DevTools inspector, when there is one. */
	inspectorUrl?: string;
	/** The server's process group. */
	processGroupId: number;
	output(): string;
	stop(): Promise<void>;
}

export type Runtime = "wrangler" | "workerd";
export const runtimes: readonly Runtime[] = ["wrangler", "workerd"];
export const runtimeLabels: Record<Runtime, string> = { wrangler: "wrangler dev", workerd: "plain workerd" };

export interface SelfHostOptions {
	/** Environment of the process: the Worker's vars, DISCORD_TOKEN, ... */
	vars?: Record<string, string>;
	/** A state folder the caller owns and `stop()` keeps; by default a temporary one `stop()` removes. */
	stateDir?: string;
	/** Another wrangler config than the project's (`--config`). */
	configPath?: string;
	/** workerd's inspector on a free port (the bench's heap figures). */
	inspector?: boolean;
	startTimeoutMs?: number;
}

export interface SelfHostServer extends QueueServer {
	port: number;
	stateDir: string;
	/** npm's pid: the process a supervisor starts and signals. */
	pid: number;
	exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
	/** What the process group wrote to stdout, line by line. */
	stdoutLines(): string[];
	/** SIGKILLs the whole group at once, as a crash or `systemctl kill -s KILL` would; keeps the state. */
	crash(): Promise<void>;
}

/** Spawns `npm run serve` in its own process group with this environment and launcher arguments. */
export function spawnServe(env: Record<string, string>, args: string[] = []) {
	const child = spawn("npm", ["run", "--silent", "serve", "--", ...args], {
		cwd: join(import.meta.dirname, ".."),
		// Loopback unless the caller says otherwise; no HOST of the test machine's own environment.
		env: { ...process.env, HOST: "127.0.0.1", ...env },
		detached: true,
		stdio: ["ignore", "pipe", "pipe"],
	});
	let stdout = "";
	let output = "";
	child.stdout?.on("data", (chunk: Buffer) => {
		stdout += chunk;
		output += chunk;
	});
	child.stderr?.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
		child.once("exit", (code, signal) => resolve({ code, signal })),
	);
	return { child, exited, stdout: () => stdout, output: () => output };
}

export async function startSelfHost(options: SelfHostOptions = {}): Promise<SelfHostServer> {
	const port = await freePort();
	const ownsStateDir = options.stateDir === undefined;
	const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), "gateway-queue-self-host-")));
	const args = options.configPath === undefined ? [] : ["--config", options.configPath];
	const inspectorPort = options.inspector ? await freePort() : undefined;
	if (inspectorPort !== undefined) args.push("--", `--inspector-addr=127.0.0.1:${inspectorPort}`);
	const run = spawnServe({ ...options.vars, PORT: String(port), STATE_DIR: stateDir }, args);
	const url = `http://127.0.0.1:${port}`;
	const server: SelfHostServer = {
		url,
		...(inspectorPort !== undefined && { inspectorUrl: `http://127.0.0.1:${inspectorPort}` }),
		port,
		stateDir,
		pid: run.child.pid ?? 0,
		processGroupId: run.child.pid ?? 0,
		exited: run.exited,
		output: run.output,
		stdoutLines: () => run.stdout().split("\n").filter(Boolean),
		crash: () => killGroup(run.child, "SIGKILL"),
		stop: async () => {
			await killGroup(run.child, "SIGTERM");
			if (ownsStateDir) await rm(stateDir, { recursive: true, force: true });
		},
	};
	const listening = new Promise<void>((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error("timed out")), options.startTimeoutMs ?? 90_000);
		// Removed once listening: scanning all the output at each chunk would make the reader of a
		// busy queue's log lines slower and slower, and workerd's writes to stdout wait for it.
		const check = () => {
			if (run.stdout().includes('"event":"self_host_listening"')) {
				clearTimeout(timer);
				run.child.stdout?.off("data", check);
				resolve();
			}
		};
		run.child.stdout?.on("data", check);
		run.exited.then(() => reject(new Error("exited")));
	});
	try {
		await listening;
		return server;
	} catch (error) {
		await server.stop();
		throw new Error(`npm run serve did not listen on ${url} (${(error as Error).message}):\n${run.output()}`);
	}
}

/** Signals the group, then SIGKILLs what is left after a grace, and waits for the top process. */
async function killGroup(child: ChildProcess, signal: NodeJS.Signals, graceMs = 3000): Promise<void> {
	const signalGroup = (which: NodeJS.Signals) => {
		try {
			process.kill(-(child.pid as number), which);
		} catch {
			// Already gone.
		}
	};
	if (child.pid === undefined) return;
	const exited =
		child.exitCode !== null || child.signalCode !== null
			? Promise.resolve()
			: new Promise<void>((resolve) => child.once("exit", () => resolve()));
	signalGroup(signal);
	const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
	await exited;
	clearTimeout(timer);
	// workerd may outlive its parents: make sure nothing of the group is left.
	signalGroup("SIGKILL");
}

/** The queue under either runtime with these vars; `configPath` is another wrangler config (the bench's Worker). */
export async function startServer(
	runtime: Runtime,
	vars: Record<string, string>,
	options: { configPath?: string; inspector?: boolean } = {},
): Promise<QueueServer> {
	if (runtime === "wrangler") {
		const server: DevServer = await startDevServer(vars, 90_000, options.configPath);
		return server;
	}
	return startSelfHost({ vars, ...options });
}

/** Live (not zombie) processes of a process group, from /proc (Linux). */
export async function processesInGroup(processGroupId: number): Promise<number[]> {
	const pids: number[] = [];
	for (const entry of await readdir("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
		const [state, , groupId] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		if (state !== "Z" && Number(groupId) === processGroupId) pids.push(Number(entry));
	}
	return pids;
}
