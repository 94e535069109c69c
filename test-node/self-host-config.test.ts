/** The self-hosted process's settings and workerd config, as pure functions; and that they follow wrangler.toml. */
import { readFile, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { settings } from "../src/config/settings.ts";
import { buildDirOf, currentBuild, ensureBuild, projectRoot } from "../tools/self-host-build.ts";
import {
	launchSettings,
	listenAddress,
	localUrl,
	secretNames,
	type WorkerDescription,
	workerdConfig,
	workerEnvironment,
} from "../tools/self-host-config.ts";

const worker: WorkerDescription = {
	name: "gateway-queue",
	mainModule: "index.js",
	modules: [{ name: "0123abcd-script.browser.js", type: "text" }],
	compatibilityDate: "2026-11-01",
	compatibilityFlags: ["enable_request_signal"],
	vars: { MAX_CONCURRENCY: "1", IDENTIFY_INTERVAL_MS: "5500" },
	durableObjects: [{ binding: "GATEWAY_QUEUE", className: "GatewayQueue" }],
};

describe("launchSettings", () => {
	it("defaults to 0.0.0.0:8080 and the project's state folder", () => {
		expect(launchSettings({}, "/srv/queue/state")).toEqual({
			host: "0.0.0.0",
			port: 8080,
			stateDir: "/srv/queue/state",
		});
		expect(launchSettings({ HOST: "::1", PORT: "5000", STATE_DIR: "/var/lib/q" }, "/x")).toEqual({
			host: "::1",
			port: 5000,
			stateDir: "/var/lib/q",
		});
	});

	it("names every variable that is wrong", () => {
		expect(() => launchSettings({ PORT: "80a", HOST: "a b", STATE_DIR: "bad\npath" }, "/x")).toThrow(
			/HOST must be an IP address or a host name; PORT must be a port number; STATE_DIR must be a path/,
		);
		expect(() => launchSettings({ PORT: "65536" }, "/x")).toThrow("PORT must be at most 65535");
		expect(() => launchSettings({ HOST: "" }, "/x")).toThrow("HOST");
	});
});

describe("addresses", () => {
	it("brackets IPv6 and reaches wildcard addresses on loopback", () => {
		expect(listenAddress("0.0.0.0", 8080)).toBe("0.0.0.0:8080");
		expect(listenAddress("::", 8080)).toBe("[::]:8080");
		expect(localUrl("0.0.0.0", 8080)).toBe("http://127.0.0.1:8080");
		expect(localUrl("::", 8080)).toBe("http://[::1]:8080");
		expect(localUrl("10.1.2.3", 80)).toBe("http://10.1.2.3:80");
	});
});

describe("workerEnvironment", () => {
	it("adds wrangler.toml's value of each var not set, and keeps a var set, even empty", () => {
		const env = workerEnvironment({ IDENTIFY_INTERVAL_MS: "", PATH: "/bin" }, worker);
		expect(env).toMatchObject({ MAX_CONCURRENCY: "1", IDENTIFY_INTERVAL_MS: "", PATH: "/bin" });
	});
});

describe("workerdConfig", () => {
	const config = (secretsSet: string[]) =>
		workerdConfig(worker, {
			address: "0.0.0.0:8080",
			storageDir: '/var/lib/"q"/durable-objects',
			bundlePath: "../dist/index.js",
			secretsSet,
		});

	it("binds each var and each secret that is set from the environment by name, and no other", () => {
		const text = config(["QUEUE_SECRET"]);
		expect(text).toContain('(name = "MAX_CONCURRENCY", fromEnvironment = "MAX_CONCURRENCY")');
		expect(text).toContain('(name = "QUEUE_SECRET", fromEnvironment = "QUEUE_SECRET")');
		expect(text).not.toContain("DISCORD_TOKEN");
		expect(text).toContain('(name = "GATEWAY_QUEUE", durableObjectNamespace = "GatewayQueue")');
		expect(text).toContain('uniqueKey = "gateway-queue-GatewayQueue", enableSql = true');
		expect(text).toContain('address = "0.0.0.0:8080"');
		expect(text).toContain('esModule = embed "../dist/index.js"');
	});

	it("embeds the bundle's other modules from beside it, by their type", () => {
		expect(config([])).toContain(
			'(name = "0123abcd-script.browser.js", text = embed "../dist/0123abcd-script.browser.js")',
		);
	});

	it("escapes paths as Cap'n Proto text", () => {
		expect(config([])).toContain('path = "/var/lib/\\"q\\"/durable-objects"');
	});
});

describe("following wrangler.toml", () => {
	it("binds every var of wrangler.toml, with its value there as the default", async () => {
		const { worker: built } = await ensureBuild(join(projectRoot, "wrangler.toml"));
		const wranglerToml = await readFile(join(projectRoot, "wrangler.toml"), "utf8");
		const varsSection = wranglerToml.slice(wranglerToml.indexOf("[vars]"), wranglerToml.indexOf("[[durable_objects"));
		const vars = Object.fromEntries([...varsSection.matchAll(/^([A-Z_]+) = "(.*)"$/gm)].map((m) => [m[1], m[2]]));
		expect(built.vars).toEqual(vars);
		expect(Object.keys(vars)).toContain("IDENTIFY_INTERVAL_MS");
		expect(JSON.parse(await readFile(join(buildDirOf("wrangler.toml"), "worker.json"), "utf8"))).toEqual(built);
	});

	it("builds the dashboard's script beside the bundle as a text module, as wrangler.toml's rule says", async () => {
		const { worker: built, dir } = await ensureBuild(join(projectRoot, "wrangler.toml"));
		expect(built.modules).toEqual([{ name: expect.stringMatching(/^[0-9a-f]+-script\.browser\.js$/), type: "text" }]);
		const [module] = built.modules;
		const source = await readFile(join(projectRoot, "src/edge/dashboard/script.browser.js"), "utf8");
		expect(await readFile(join(dir, module?.name ?? ""), "utf8")).toBe(source);
	});

	it("runs with the Worker's own list of settings: wrangler.toml's vars are its vars, with its defaults", async () => {
		const { worker: built } = await ensureBuild(join(projectRoot, "wrangler.toml"));
		const vars = Object.values(settings).flatMap((setting) =>
			"default" in setting ? [[setting.name, setting.default] as const] : [],
		);
		expect(built.vars).toEqual(Object.fromEntries(vars));
		expect(Object.values(settings).map((setting) => setting.name)).toEqual([
			...Object.keys(built.vars),
			...secretNames,
		]);
	});

	it("counts the build current until a source is newer than it", async () => {
		const config = join(projectRoot, "wrangler.toml");
		const built = await ensureBuild(config);
		expect(await currentBuild(config)).toEqual(built);
		const description = join(built.dir, "worker.json");
		const { atime, mtime } = await stat(description);
		await utimes(description, atime, new Date(0));
		try {
			expect(await currentBuild(config)).toBeUndefined();
		} finally {
			await utimes(description, atime, mtime);
		}
	});

	it("pins workerd at the version wrangler runs, so both use one binary", async () => {
		const packageJson = JSON.parse(await readFile(join(projectRoot, "package.json"), "utf8"));
		const wrangler = JSON.parse(await readFile(join(projectRoot, "node_modules/wrangler/package.json"), "utf8"));
		expect(packageJson.devDependencies.workerd).toBe(wrangler.dependencies.workerd);
	});
});
