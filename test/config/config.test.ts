import { describe, expect, it, vi } from "vitest";
import { ConfigError, configOf, parseConfig } from "../../src/config/config";

describe("configOf", () => {
	it("logs each warning once, when the configuration is first read", () => {
		const lines = vi.spyOn(console, "log").mockImplementation(() => {});
		const env = { IDENTIFY_INTERVAL_MS: "200" };
		configOf(env);
		configOf(env);
		expect(lines.mock.calls.map(([line]) => JSON.parse(String(line)))).toEqual([
			{ event: "unsafe_config", level: "warn", message: expect.stringContaining("IDENTIFY_INTERVAL_MS is 200 ms") },
		]);
	});
});

describe("parseConfig", () => {
	it("uses the documented defaults", () => {
		expect(parseConfig({})).toEqual({
			maxConcurrency: 1,
			identifyIntervalMs: 5500,
			discordApiUrl: "https://discord.com/api/v10",
			waitTimeoutMs: 3_600_000,
			maxWaitersPerQueue: 20_000,
			retryGraceMs: 10_000,
			discordToken: undefined,
			budgetReserve: { percentOfTotal: 5 },
			queueSecret: undefined,
			maxQueueNameLength: 64,
			maxUrlLength: 2048,
			maxHeaderBytes: 16_384,
			warnings: [],
		});
	});

	it("accepts an interval below Discord's 5000 ms, with a warning that says what it costs", () => {
		expect(parseConfig({ IDENTIFY_INTERVAL_MS: "5000" }).warnings).toEqual([]);
		expect(parseConfig({ IDENTIFY_INTERVAL_MS: "200" }).warnings).toEqual([
			"IDENTIFY_INTERVAL_MS is 200 ms, below Discord's 5000 ms: shards will be rate-limited (Invalid Session). Use it for tests only.",
		]);
	});

	it("reads every var and secret", () => {
		const config = parseConfig({
			MAX_CONCURRENCY: "16",
			IDENTIFY_INTERVAL_MS: " 6000 ",
			DISCORD_API_URL: "http://127.0.0.1:9000/api/",
			WAIT_TIMEOUT_MS: "60000",
			MAX_WAITERS_PER_QUEUE: "50",
			RETRY_GRACE_MS: "0",
			DISCORD_TOKEN: "abc.def",
			BUDGET_RESERVE: "20",
			QUEUE_SECRET: " 0123456789abcdef:~ ",
			MAX_QUEUE_NAME_LENGTH: "100",
			MAX_URL_LENGTH: "4096",
			MAX_HEADER_BYTES: "8192",
		});
		expect(config).toEqual({
			maxConcurrency: 16,
			identifyIntervalMs: 6000,
			discordApiUrl: "http://127.0.0.1:9000/api",
			waitTimeoutMs: 60_000,
			maxWaitersPerQueue: 50,
			retryGraceMs: 0,
			discordToken: "abc.def",
			budgetReserve: { starts: 20 },
			queueSecret: "0123456789abcdef:~",
			maxQueueNameLength: 100,
			maxUrlLength: 4096,
			maxHeaderBytes: 8192,
			warnings: [],
		});
	});

	it("treats an empty DISCORD_TOKEN as unset", () => {
		expect(parseConfig({ DISCORD_TOKEN: "  " }).discordToken).toBeUndefined();
	});

	it("reads BUDGET_RESERVE as a percentage of the daily total", () => {
		expect(parseConfig({ BUDGET_RESERVE: "2.5%" }).budgetReserve).toEqual({ percentOfTotal: 2.5 });
		expect(parseConfig({ BUDGET_RESERVE: "100%" }).budgetReserve).toEqual({ percentOfTotal: 100 });
	});

	it.each([
		["BUDGET_RESERVE", "-1"],
		["BUDGET_RESERVE", "5 %"],
		["BUDGET_RESERVE", "101%"],
		["BUDGET_RESERVE", "lots"],
		["MAX_CONCURRENCY", "0"],
		["MAX_CONCURRENCY", "four"],
		["IDENTIFY_INTERVAL_MS", "-5"],
		["IDENTIFY_INTERVAL_MS", "5.5"],
		["DISCORD_API_URL", "discord.com"],
		["WAIT_TIMEOUT_MS", "10"],
		["MAX_WAITERS_PER_QUEUE", ""],
		["RETRY_GRACE_MS", "-1"],
		["RETRY_GRACE_MS", "3600001"],
		// A secret set by mistake to something weak fails closed instead of leaving the queues open.
		["QUEUE_SECRET", ""],
		["QUEUE_SECRET", "short"],
		["QUEUE_SECRET", "sixteen chars with spaces"],
		["QUEUE_SECRET", "x".repeat(1025)],
		["MAX_QUEUE_NAME_LENGTH", "0"],
		["MAX_URL_LENGTH", "100"],
		["MAX_HEADER_BYTES", "999999999"],
	])("rejects %s=%j with an error naming it", (name, value) => {
		expect(() => parseConfig({ [name]: value })).toThrow(ConfigError);
		expect(() => parseConfig({ [name]: value })).toThrow(name);
	});
});
