/**
 * Starts the queue with `wrangler dev` for scripts and end-to-end tests: a free
 * port, state in a temporary folder, and a process group that is killed as a
 * whole (workerd may ignore SIGTERM, so SIGKILL follows a grace period).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface DevServer {
	url: string;
	/** The Worker's DevTools inspector (for heap figures). */
	inspectorUrl: string;
	/** wrangler's process group: wrangler, workerd and their children. */
	processGroupId: number;
	/** Everything wrangler printed, for diagnosing a failed start. */
	output(): string;
	stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.unref();
		server.on("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			server.close(() =>
				typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
			);
		});
	});
}

export async function startDevServer(
	vars: Record<string, string> = {},
	startTimeoutMs = 90_000,
	/** Another wrangler config than the project's (the bench's Worker). */
	configPath?: string,
): Promise<DevServer> {
	const [port, inspectorPort] = [await freePort(), await freePort()];
	const stateDir = await mkdtemp(join(tmpdir(), "gateway-queue-"));
	const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort)];
	args.push("--persist-to", stateDir, "--show-interactive-dev-session=false", "--log-level", "warn");
	for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
	if (configPath !== undefined) args.push("--config", configPath);
	const child = spawn(join(import.meta.dirname, "..", "node_modules", ".bin", "wrangler"), args, {
		cwd: join(import.meta.dirname, ".."),
		detached: true,
		stdio: ["ignore", "pipe", "pipe"],
	});
	let output = "";
	child.stdout?.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	child.stderr?.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	const url = `http://127.0.0.1:${port}`;
	const server: DevServer = {
		url,
		inspectorUrl: `http://127.0.0.1:${inspectorPort}`,
		processGroupId: child.pid ?? 0,
		output: () => output,
		stop: async () => {
			await killGroup(child);
			await rm(stateDir, { recursive: true, force: true });
		},
	};
	const deadline = Date.now() + startTimeoutMs;
	while (Date.now() < deadline) {
		if (child.exitCode !== null) break;
		try {
			if ((await fetch(`${url}/_/health`, { signal: AbortSignal.timeout(1000) })).ok) return server;
		} catch {
			// Not listening yet.
		}
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
	await server.stop();
	throw new Error(`wrangler dev did not become healthy on ${url}:\n${output}`);
}

async function killGroup(child: ChildProcess, graceMs = 3000): Promise<void> {
	if (child.pid === undefined || child.exitCode !== null) return;
	const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
	const signalGroup = (signal: NodeJS.Signals) => {
		try {
			process.kill(-(child.pid as number), signal);
		} catch {
			// Already gone.
		}
	};
	signalGroup("SIGTERM");
	const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
	await exited;
	clearTimeout(timer);
	// workerd may outlive wrangler: make sure nothing of the group is left.
	signalGroup("SIGKILL");
}
