/**
 * `npm run serve`: the queue as one self-hosted process on plain workerd, no
 * wrangler at run time. Builds the bundle if a source changed, writes
 * `$STATE_DIR/workerd.capnp`, runs `workerd serve` on it with the Durable Objects'
 * SQLite files in `$STATE_DIR/durable-objects`, and stays its parent: it checks the
 * Worker's configuration once workerd listens, and stops workerd on SIGINT,
 * SIGTERM or SIGHUP. Its own log lines are JSON on stdout, like the Worker's.
 *
 *   node scripts/serve.ts [--config wrangler.toml] [--build-only] [-- workerd options]
 *
 * Exit status: 0 after a stop asked for by a signal, 78 when the configuration is
 * invalid (the line says which variable), workerd's own status when it ends by itself.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { defaultWranglerConfig, ensureBuild, projectRoot } from "../tools/self-host-build.ts";
import {
	launchSettings,
	listenAddress,
	localUrl,
	SettingsError,
	secretNames,
	workerdConfig,
	workerEnvironment,
} from "../tools/self-host-config.ts";

/** sysexits' EX_CONFIG: systemd's `RestartPreventExitStatus=78` keeps a misconfigured unit from restarting in a loop. */
const exitMisconfigured = 78;
/**
 * On SIGTERM workerd stops accepting and waits for every open request, and a held
 * request may wait minutes for its grant: after this grace it is killed. Grants are
 * on disk before they are answered, so nothing is lost; waiting shards reconnect.
 */
const stopGraceMs = 1000;
const startTimeoutMs = 60_000;

function logLine(event: string, fields: Record<string, string | number>): void {
	console.log(JSON.stringify({ event, ...fields }));
}

function refuse(message: string): never {
	logLine("misconfigured", { level: "error", message });
	process.exit(exitMisconfigured);
}

const { values: options, positionals: workerdOptions } = parseArgs({
	options: { config: { type: "string", default: defaultWranglerConfig }, "build-only": { type: "boolean" } },
	allowPositionals: true,
});
const wranglerConfig = resolve(options.config);

let settings: ReturnType<typeof launchSettings>;
try {
	settings = launchSettings(process.env, join(projectRoot, "state"));
} catch (error) {
	if (error instanceof SettingsError) refuse(error.message);
	throw error;
}

const buildStartedMs = performance.now();
const { worker, bundlePath } = await ensureBuild(wranglerConfig, () =>
	logLine("self_host_build", { config: relative(projectRoot, wranglerConfig) || wranglerConfig }),
).catch((error: unknown) => {
	logLine("self_host_build_failed", {
		level: "error",
		message: error instanceof Error ? error.message : String(error),
	});
	process.exit(1);
});
if (options["build-only"]) {
	logLine("self_host_built", { bundle: bundlePath, ms: Math.round(performance.now() - buildStartedMs) });
	process.exit(0);
}

const storageDir = join(settings.stateDir, "durable-objects");
const configPath = join(settings.stateDir, "workerd.capnp");
await mkdir(storageDir, { recursive: true });
await writeFile(
	configPath,
	workerdConfig(worker, {
		address: listenAddress(settings.host, settings.port),
		storageDir,
		bundlePath: relative(dirname(configPath), bundlePath),
		secretsSet: secretNames.filter((name) => process.env[name] !== undefined),
	}),
);

const workerdBinary = (createRequire(import.meta.url)("workerd") as { default: string }).default;
// fd 3: workerd's control messages, such as the port it listens on.
const workerd: ChildProcess = spawn(workerdBinary, ["serve", configPath, "--control-fd=3", ...workerdOptions], {
	stdio: ["ignore", "inherit", "inherit", "pipe"],
	env: workerEnvironment(process.env, worker),
});

let stopping = false;
function stop(): void {
	if (stopping) return;
	stopping = true;
	workerd.kill("SIGTERM");
	setTimeout(() => workerd.kill("SIGKILL"), stopGraceMs).unref();
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, stop);
// Whatever ends this process ends workerd too.
process.on("exit", () => workerd.kill("SIGKILL"));

workerd.on("exit", (code, signal) => {
	// Ctrl-C and a closed terminal reach workerd too, maybe before they reach us.
	const asked = stopping || signal === "SIGINT" || signal === "SIGHUP";
	if (asked) logLine("self_host_stopped", { code: code ?? signal ?? "" });
	else logLine("self_host_workerd_exited", { level: "error", code: code ?? signal ?? "" });
	process.exit(asked ? 0 : (code ?? 1));
});

const listeningPort = await new Promise<number>((resolvePort, reject) => {
	const timer = setTimeout(
		() => reject(new Error(`workerd did not listen within ${startTimeoutMs} ms`)),
		startTimeoutMs,
	);
	createInterface({ input: workerd.stdio[3] as Readable }).on("line", (line) => {
		const port = listenedPort(line);
		if (port === undefined) return;
		clearTimeout(timer);
		resolvePort(port);
	});
});

function listenedPort(controlLine: string): number | undefined {
	try {
		const message = JSON.parse(controlLine) as { event?: string; socket?: string; port?: number };
		return message.event === "listen" && message.socket === "http" ? message.port : undefined;
	} catch {
		return undefined;
	}
}

// The Worker validates its vars on every request (src/config/config.ts); its health route says whether they passed.
const url = localUrl(settings.host, listeningPort);
const health = await fetch(`${url}/_/health`, { signal: AbortSignal.timeout(10_000) }).catch((error: unknown) => {
	if (stopping) return undefined; // a signal came meanwhile: workerd's exit ends this process
	throw error;
});
if (health && health.status !== 200) {
	const body = (await health.json().catch(() => ({}))) as { error?: string; message?: string };
	stopping = true;
	workerd.kill("SIGKILL");
	if (body.error === "misconfigured") refuse(body.message ?? "misconfigured");
	logLine("self_host_unhealthy", { level: "error", status: health.status, message: body.message ?? "" });
	process.exit(1);
}
if (health) {
	logLine("self_host_listening", {
		address: listenAddress(settings.host, listeningPort),
		url,
		state_dir: settings.stateDir,
		config: configPath,
	});
}
