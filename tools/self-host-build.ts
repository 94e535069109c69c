/**
 * The self-hosted Worker's build: the bundle `wrangler deploy --dry-run --outdir`
 * makes (exactly what `npm run deploy` would upload) and `worker.json`, what the
 * wrangler config says about it (vars and their defaults, compatibility, Durable
 * Objects). Rebuilt only when a source is newer than the build. Wrangler is
 * needed here only, never to run the result.
 */
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, matchesGlob, relative, resolve } from "node:path";
import { promisify } from "node:util";
import type { ModuleType, WorkerDescription } from "./self-host-config.ts";

export const projectRoot = resolve(import.meta.dirname, "..");
export const defaultWranglerConfig = join(projectRoot, "wrangler.toml");
const descriptionFile = "worker.json";

export interface SelfHostBuild {
	dir: string;
	/** The bundle's absolute path. */
	bundlePath: string;
	worker: WorkerDescription;
}

/** `dist/self-host/wrangler` for `wrangler.toml`, `dist/self-host/bench-worker-wrangler` for the bench's. */
export function buildDirOf(wranglerConfig: string): string {
	const slug = relative(projectRoot, resolve(wranglerConfig))
		.replace(/\.(toml|jsonc?)$/, "")
		.replace(/[^A-Za-z0-9]+/g, "-")
		.replace(/^-|-$/g, "");
	return join(projectRoot, "dist", "self-host", slug);
}

async function newestMtimeMs(path: string): Promise<number> {
	const info = await stat(path).catch(() => undefined);
	if (!info) return 0;
	if (!info.isDirectory()) return info.mtimeMs;
	let newest = info.mtimeMs;
	for (const entry of await readdir(path)) {
		// wrangler writes its own .wrangler/ beside a config: not a source.
		if (!entry.startsWith(".")) newest = Math.max(newest, await newestMtimeMs(join(path, entry)));
	}
	return newest;
}

/** What the build depends on: the config, the Worker's sources, the locked dependencies, this file. */
function buildInputs(wranglerConfig: string): string[] {
	const inputs = [
		wranglerConfig,
		join(projectRoot, "src"),
		join(projectRoot, "package-lock.json"),
		import.meta.filename,
	];
	// The bench's Worker lives beside its config and imports src/.
	if (dirname(resolve(wranglerConfig)) !== projectRoot) inputs.push(dirname(resolve(wranglerConfig)));
	return inputs;
}

async function readDescription(dir: string): Promise<WorkerDescription | undefined> {
	try {
		return JSON.parse(await readFile(join(dir, descriptionFile), "utf8")) as WorkerDescription;
	} catch {
		return undefined;
	}
}

/** The build of this wrangler config, if it exists and no input is newer than it. */
export async function currentBuild(wranglerConfig: string): Promise<SelfHostBuild | undefined> {
	const dir = buildDirOf(wranglerConfig);
	const worker = await readDescription(dir);
	if (!worker) return undefined;
	const bundlePath = join(dir, worker.mainModule);
	const builtAtMs = (await stat(join(dir, descriptionFile))).mtimeMs;
	if ((await newestMtimeMs(bundlePath)) === 0) return undefined;
	for (const input of buildInputs(wranglerConfig)) {
		if ((await newestMtimeMs(input)) > builtAtMs) return undefined;
	}
	return { dir, bundlePath, worker };
}

const require = createRequire(import.meta.url);

/** What is read here of wrangler's reading of a config (its own types are in a package wrangler bundles). */
interface WranglerConfig {
	name: string | undefined;
	compatibility_date: string | undefined;
	compatibility_flags: string[];
	vars: Record<string, unknown>;
	durable_objects: { bindings: { name: string; class_name: string; script_name?: string }[] };
	migrations: { new_sqlite_classes?: string[] }[];
	rules: { type: string; globs: string[] }[];
}

const moduleTypes = new Map<string, ModuleType>([
	["Text", "text"],
	["Data", "data"],
	["CompiledWasm", "wasm"],
]);

/**
 * The bundle's other modules among the files wrangler wrote beside it, each of the type of the
 * first `[[rules]]` entry whose globs match its name (wrangler names it `<hash>-<file name>`).
 */
function otherModules(wranglerConfig: string, rules: WranglerConfig["rules"], mainModule: string, files: string[]) {
	// Not modules: the bundle's source map and wrangler's README.md.
	const modules = files.filter((file) => file !== mainModule && file !== "README.md" && !file.endsWith(".map"));
	return modules.map((name) => {
		const rule = rules.find(({ globs }) => globs.some((glob) => matchesGlob(name, glob)));
		const type = rule && moduleTypes.get(rule.type);
		if (!type) throw new Error(`${name}: no Text, Data or CompiledWasm rule of ${wranglerConfig} matches it`);
		return { name, type };
	});
}

/** Wrangler's reading of the config (any format it takes), reduced to what the self-hosted process needs. */
async function describeWorker(wranglerConfig: string, mainModule: string, files: string[]): Promise<WorkerDescription> {
	const { unstable_readConfig } = await import("wrangler");
	const config: WranglerConfig = unstable_readConfig({ config: wranglerConfig }, { hideWarnings: true });
	const sqliteClasses = new Set(config.migrations.flatMap((migration) => migration.new_sqlite_classes ?? []));
	const durableObjects = config.durable_objects.bindings.map((binding) => {
		if (binding.script_name || !sqliteClasses.has(binding.class_name)) {
			throw new Error(`${binding.name}: only this Worker's own SQLite-backed Durable Objects can be self-hosted`);
		}
		return { binding: binding.name, className: binding.class_name };
	});
	const vars: Record<string, string> = {};
	for (const [name, value] of Object.entries(config.vars)) {
		vars[name] = typeof value === "string" ? value : JSON.stringify(value);
	}
	return {
		name: config.name ?? "worker",
		mainModule,
		modules: otherModules(wranglerConfig, config.rules, mainModule, files),
		compatibilityDate: config.compatibility_date ?? failWith(`${wranglerConfig} sets no compatibility_date`),
		compatibilityFlags: config.compatibility_flags,
		vars,
		durableObjects,
	};
}

function failWith(message: string): never {
	throw new Error(message);
}

/**
 * Bundles the Worker with wrangler into a fresh folder and describes it, then
 * moves each file into place, `worker.json` last: a build that fails half-way
 * leaves the old one in use, and a start never finds a description without its bundle.
 */
export async function build(wranglerConfig: string): Promise<SelfHostBuild> {
	const dir = buildDirOf(wranglerConfig);
	const staging = `${dir}.tmp-${process.pid}-${Date.now()}`;
	await mkdir(staging, { recursive: true });
	try {
		const wranglerPackage = require.resolve("wrangler/package.json");
		const wranglerBin = join(dirname(wranglerPackage), "bin", "wrangler.js");
		// process.execPath: wrangler needs Node.js 22, which runs this script even where `node` on PATH is older.
		await promisify(execFile)(
			process.execPath,
			[wranglerBin, "deploy", "--dry-run", "--outdir", staging, "--config", wranglerConfig],
			{ cwd: projectRoot, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, maxBuffer: 16 * 1024 * 1024 },
		).catch((error: Error & { stdout?: string; stderr?: string }) => {
			throw new Error(`wrangler could not build ${wranglerConfig}:\n${error.stdout ?? ""}${error.stderr ?? ""}`);
		});
		const mainModule = "index.js";
		const files = await readdir(staging);
		const worker = await describeWorker(wranglerConfig, mainModule, files);
		await writeFile(join(staging, descriptionFile), `${JSON.stringify(worker, null, "\t")}\n`);
		await mkdir(dir, { recursive: true });
		for (const file of [...files, descriptionFile]) await rename(join(staging, file), join(dir, file));
		// An earlier build's modules, named by their content's hash: a running workerd has read them already.
		for (const file of await readdir(dir)) {
			if (file !== descriptionFile && !files.includes(file)) await rm(join(dir, file), { force: true });
		}
		return { dir, bundlePath: join(dir, mainModule), worker };
	} finally {
		await rm(staging, { recursive: true, force: true });
	}
}

/** The current build, or a new one when a source changed (`onBuild` is told first). */
export async function ensureBuild(wranglerConfig: string, onBuild: () => void = () => undefined) {
	const current = await currentBuild(wranglerConfig);
	if (current) return current;
	onBuild();
	return build(wranglerConfig);
}
