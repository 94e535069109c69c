/**
 * The self-hosted process's settings and the workerd config it runs, as pure
 * functions: `npm run serve` (scripts/serve.ts) reads the environment, and the
 * build (tools/self-host-build.ts) describes the Worker from wrangler.toml.
 */
import { dirname, join, resolve } from "node:path";
import * as z from "zod/mini";

/** What the build reads from the Worker's wrangler config, kept beside the bundle as `worker.json`. */
export interface WorkerDescription {
	name: string;
	/** The bundle's file name in the build folder (`wrangler deploy --dry-run --outdir` output). */
	mainModule: string;
	/**
	 * The bundle's other modules, beside it in the build folder: what the wrangler config's
	 * `[[rules]]` keep out of the bundle (the dashboard's script, as text), by workerd's module type.
	 */
	modules: { name: string; type: ModuleType }[];
	compatibilityDate: string;
	compatibilityFlags: string[];
	/** The `[vars]` of the wrangler config: the names the environment may set, and their defaults. */
	vars: Record<string, string>;
	durableObjects: { binding: string; className: string }[];
}

/** workerd's types of the modules beside the bundle: wrangler's Text, Data and CompiledWasm. */
export type ModuleType = "text" | "data" | "wasm";

/** Secrets the Worker reads (`src/config/settings.ts`); bound only when set, never written to disk. */
export { secretNames } from "../src/config/settings.ts";

/** The launcher's own variables, beside the Worker's. */
export interface LaunchSettings {
	host: string;
	/** 0 lets the system choose; the `listening` line says which. */
	port: number;
	stateDir: string;
}

export const defaultPort = 8080;

export class SettingsError extends Error {
	override name = "SettingsError";
}

const launchSchema = z.object({
	HOST: z._default(
		z.string().check(z.trim(), z.regex(/^[A-Za-z0-9.:[\]*-]+$/, "must be an IP address or a host name")),
		"0.0.0.0",
	),
	PORT: z._default(
		z.pipe(
			z.string().check(z.trim(), z.regex(/^\d{1,5}$/, "must be a port number")),
			z.pipe(z.transform(Number), z.number().check(z.maximum(65_535, "must be at most 65535"))),
		),
		defaultPort,
	),
	// Written into the workerd config as a string; control characters could not be.
	STATE_DIR: z.optional(z.string().check(z.regex(/^\P{Cc}+$/u, "must be a path, without control characters"))),
});

/** HOST, PORT and STATE_DIR from the environment; the error names every variable that is wrong. */
export function launchSettings(env: NodeJS.ProcessEnv, defaultStateDir: string): LaunchSettings {
	const parsed = launchSchema.safeParse({ HOST: env.HOST, PORT: env.PORT, STATE_DIR: env.STATE_DIR });
	if (!parsed.success) {
		const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`);
		throw new SettingsError(`Invalid configuration: ${problems.join("; ")}`);
	}
	const { HOST: host, PORT: port, STATE_DIR: stateDir } = parsed.data;
	return { host, port, stateDir: resolve(stateDir ?? defaultStateDir) };
}

/** An IPv6 address in brackets, as in URLs and workerd's addresses. */
function bracketed(host: string): string {
	return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** workerd's `host:port`. */
export function listenAddress(host: string, port: number): string {
	return `${bracketed(host)}:${port}`;
}

/** Where the launcher itself reaches the server: a wildcard address on loopback. */
export function localUrl(host: string, port: number): string {
	const loopbackOf: Record<string, string> = { "0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "[::]": "[::1]" };
	const reachable = loopbackOf[bracketed(host)] ?? bracketed(host);
	return `http://${reachable}:${port}`;
}

/**
 * The environment workerd runs with: the launcher's, plus each var of the
 * wrangler config that is not set there, at its wrangler config value. A var set
 * to anything, even empty, is passed as set, so the Worker validates it as
 * Cloudflare would.
 */
export function workerEnvironment(env: NodeJS.ProcessEnv, worker: WorkerDescription): NodeJS.ProcessEnv {
	const withDefaults: NodeJS.ProcessEnv = { ...env };
	for (const [name, value] of Object.entries(worker.vars)) withDefaults[name] ??= value;
	return withDefaults;
}

/** A Cap'n Proto text literal. */
function text(value: string): string {
	return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

export interface WorkerdConfigOptions {
	address: string;
	/** The folder the Durable Objects' SQLite files live in. */
	storageDir: string;
	/** The bundle, relative to the config file (workerd resolves `embed` from there); its other modules are beside it. */
	bundlePath: string;
	/** Secrets set in the environment: bound from it; the others are left unbound, as on Cloudflare. */
	secretsSet: readonly string[];
}

/** The workerd config of one self-hosted instance: one file, every value visible but the secrets. */
export function workerdConfig(worker: WorkerDescription, options: WorkerdConfigOptions): string {
	const bindings = [
		...worker.durableObjects.map(
			({ binding, className }) => `(name = ${text(binding)}, durableObjectNamespace = ${text(className)})`,
		),
		...[...Object.keys(worker.vars), ...options.secretsSet].map(
			(name) => `(name = ${text(name)}, fromEnvironment = ${text(name)})`,
		),
	];
	const namespaces = worker.durableObjects.map(
		({ className }) =>
			`(className = ${text(className)}, uniqueKey = ${text(`${worker.name}-${className}`)}, enableSql = true)`,
	);
	const modules = [
		`(name = ${text(worker.mainModule)}, esModule = embed ${text(options.bundlePath)})`,
		...worker.modules.map(
			({ name, type }) => `(name = ${text(name)}, ${type} = embed ${text(join(dirname(options.bundlePath), name))})`,
		),
	];
	const list = (items: string[], indent: string) => items.map((item) => `${indent}${item},`).join("\n");
	return `# Written by \`npm run serve\` (scripts/serve.ts) at each start, from ${worker.name}'s wrangler config
# and the environment: HOST and PORT make the socket's address, STATE_DIR the storage folder. Vars and
# secrets are read from the environment by name (fromEnvironment); secrets not set are not bound.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "worker", worker = .worker),
    (name = "storage", disk = (path = ${text(options.storageDir)}, writable = true)),
    # fetch() from the Worker: Discord's API, or a DISCORD_API_URL on this machine or network.
    (name = "internet", network = (allow = ["public", "private"], tlsOptions = (trustBrowserCas = true))),
  ],
  sockets = [(name = "http", address = ${text(options.address)}, http = (), service = "worker")],
);

const worker :Workerd.Worker = (
  modules = [
${list(modules, "    ")}
  ],
  compatibilityDate = ${text(worker.compatibilityDate)},
  compatibilityFlags = [${worker.compatibilityFlags.map(text).join(", ")}],
  bindings = [
${list(bindings, "    ")}
  ],
  # One SQLite file per object under the storage folder, in a subfolder named by uniqueKey.
  durableObjectNamespaces = [
${list(namespaces, "    ")}
  ],
  durableObjectStorage = (localDisk = "storage"),
);
`;
}
