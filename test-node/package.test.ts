/**
 * The client as its users get it: `npm pack` of packages/client, installed from the tarball into a
 * scratch project, imported from plain Node.js ESM (this Node 22, and the system's Node when there
 * is one) and from TypeScript, and used against a running queue (`wrangler dev`).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type DevServer, startDevServer } from "../tools/dev-server.ts";
import { Resources } from "../tools/resources.ts";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..");
const resources = new Resources();
let queue: DevServer;
let scratch: string;
let packed: { filename: string; files: { path: string }[] } = { filename: "", files: [] };

beforeAll(async () => {
	scratch = await resources.start({
		start: () => mkdtemp(join(tmpdir(), "gateway-queue-client-")),
		stop: (folder) => rm(folder, { recursive: true, force: true }),
	});
	[queue] = await resources.startAll<[DevServer, undefined]>([
		{ start: () => startDevServer({ MAX_CONCURRENCY: "2" }), stop: (server) => server.stop() },
		{
			start: async () => {
				// prepack builds dist with tsc, as `npm publish` would.
				const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", scratch], {
					cwd: join(root, "packages", "client"),
				});
				packed = (JSON.parse(stdout) as (typeof packed)[])[0] ?? packed;
				await writeFile(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true }));
				await run("npm", ["install", "--offline", "--no-audit", "--no-fund", join(scratch, packed.filename)], {
					cwd: scratch,
				});
				return undefined;
			},
			stop: async () => {},
		},
	]);
}, 120_000);
afterAll(async () => {
	await resources.stopAll();
});

test("the tarball holds the built modules, their types, README, CHANGELOG and LICENSE, and no tests", () => {
	const files = packed.files.map((file) => file.path).sort();
	for (const file of ["LICENSE", "README.md", "CHANGELOG.md", "package.json", "dist/index.js", "dist/index.d.ts"])
		expect(files).toContain(file);
	for (const module of ["wait-for-identify", "options", "discord-js", "discordeno"]) {
		expect(files).toContain(`dist/${module}.js`);
		expect(files).toContain(`dist/${module}.d.ts`);
	}
	expect(files.filter((file) => /test|\.tgz$/.test(file))).toEqual([]);
});

test("the installed package.json can be published and adopted: MIT, not private, no runtime dependencies", async () => {
	const manifest = JSON.parse(
		await readFile(join(scratch, "node_modules", "gateway-queue-client", "package.json"), "utf8"),
	) as Record<string, unknown>;
	expect(manifest).toMatchObject({ name: "gateway-queue-client", license: "MIT", type: "module", sideEffects: false });
	expect(manifest.private).toBeUndefined();
	expect(manifest.dependencies).toBeUndefined();
	expect(manifest.engines).toEqual({ node: ">=18.17" });
	expect(existsSync(join(scratch, "node_modules", "gateway-queue-client", "LICENSE"))).toBe(true);
	// Nothing else was installed with it.
	const lock = JSON.parse(await readFile(join(scratch, "package-lock.json"), "utf8")) as { packages: object };
	expect(Object.keys(lock.packages).sort()).toEqual(["", "node_modules/gateway-queue-client"]);
});

const nodes = [process.execPath, ...["/usr/bin/node", "/usr/local/bin/node"].filter(existsSync)];

test.each(nodes)("plain Node.js ESM (%s) imports it and gets a grant from the queue", async (node) => {
	const script = `
		import { waitForIdentify, QueueIdentifyThrottler, withIdentifyQueue, grantMessage } from "gateway-queue-client";
		if (typeof QueueIdentifyThrottler !== "function" || typeof withIdentifyQueue !== "function") throw new Error("exports");
		const grant = await waitForIdentify(5, { url: process.argv[1] });
		console.log(JSON.stringify({ grant, grantMessage, node: process.version }));
	`;
	const queueName = `package-esm-${nodes.indexOf(node)}`;
	const { stdout } = await run(node, ["--input-type=module", "-e", script, `${queue.url}/${queueName}`], {
		cwd: scratch,
		timeout: 20_000,
	});
	const { grant, grantMessage } = JSON.parse(stdout) as { grant: object; grantMessage: string };
	expect(grant).toMatchObject({ shard: 5, bucket: 1 });
	expect(grantMessage).toBe("You're free to connect now! :)");
});

test("TypeScript (strict, nodenext) compiles against its types, rejects a wrong option, and the result gets a grant", async () => {
	const source = `
		import { GatewayQueueClient, IdentifyQueueError, QueueIdentifyThrottler, type IdentifyGrant } from "gateway-queue-client";

		let wrongOption = "";
		try {
			// @ts-expect-error: a misspelt option is a type error, and an error at run time
			new QueueIdentifyThrottler({ url: "https://queue.test/mybot", tokne: "x" });
		} catch (error) {
			wrongOption = String(error);
		}
		const client = new GatewayQueueClient({ url: process.argv[2] ?? "", warn: (message: string) => console.error(message) });
		const grant: IdentifyGrant = await client.waitForIdentify(4, AbortSignal.timeout(20_000));
		const refusal: IdentifyQueueError | undefined = undefined;
		console.log(JSON.stringify({ grant, refusal: refusal ?? null, wrongOption }));
	`;
	await writeFile(join(scratch, "index.ts"), source);
	await writeFile(
		join(scratch, "tsconfig.json"),
		JSON.stringify({
			compilerOptions: {
				target: "es2022",
				module: "nodenext",
				moduleResolution: "nodenext",
				lib: ["es2022", "dom"],
				// The repository's Node.js types, as a user's project would have its own.
				typeRoots: [join(root, "node_modules", "@types")],
				types: ["node"],
				strict: true,
				exactOptionalPropertyTypes: true,
				outDir: "out",
			},
			files: ["index.ts"],
		}),
	);
	// An ES module, as the README tells users who start from `npm init -y`.
	await writeFile(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
	const compiled = await run(join(root, "node_modules", ".bin", "tsc"), ["-p", scratch], { cwd: scratch }).catch(
		(error: { stdout: string }) => error,
	);
	expect(compiled.stdout).toBe("");
	const { stdout } = await run(process.execPath, [join(scratch, "out", "index.js"), `${queue.url}/package-ts`], {
		cwd: scratch,
		timeout: 20_000,
	});
	expect(JSON.parse(stdout)).toEqual({
		grant: expect.objectContaining({ shard: 4, bucket: 0 }),
		refusal: null,
		wrongOption: "TypeError: unknown option tokne",
	});
});
