import * as z from "zod/mini";
import type { ReserveSetting } from "../core/budget";
import { defaultMaxQueueNameLength } from "../edge/validation";
import { log } from "../log";

/** Settings of one deployment, read from its vars and secrets once per isolate. */
export interface Config {
	/** Buckets for queues that know no bot token. */
	maxConcurrency: number;
	/** Minimum time between two grants of one bucket. */
	identifyIntervalMs: number;
	discordApiUrl: string;
	/** The Worker answers 503 when the queue object has not answered by then. */
	waitTimeoutMs: number;
	maxWaitersPerQueue: number;
	/** How long a shard whose client left keeps its place for the retry; 0 gives it up at once. */
	retryGraceMs: number;
	/** The bot token for requests that carry none. */
	discordToken: string | undefined;
	/** Daily session starts that are never granted. */
	budgetReserve: ReserveSetting;
	/** When set, every request but the health check must present it (`src/edge/auth.ts`). */
	queueSecret: string | undefined;
	maxQueueNameLength: number;
	/** Longest path and query of a request, in characters. */
	maxUrlLength: number;
	/** Largest request headers, counted as `name: value` lines. */
	maxHeaderBytes: number;
	/** Settings that are allowed but unsafe against Discord; logged once, shown in the status. */
	warnings: readonly string[];
}

/** Discord's own spacing of two IDENTIFYs of one bucket. */
export const discordIdentifyIntervalMs = 5000;

/** The vars and secrets the service reads, whatever `wrangler types` says their literal values are. */
export interface ConfigSource {
	MAX_CONCURRENCY?: string;
	IDENTIFY_INTERVAL_MS?: string;
	DISCORD_API_URL?: string;
	WAIT_TIMEOUT_MS?: string;
	MAX_WAITERS_PER_QUEUE?: string;
	RETRY_GRACE_MS?: string;
	DISCORD_TOKEN?: string;
	BUDGET_RESERVE?: string;
	QUEUE_SECRET?: string;
	MAX_QUEUE_NAME_LENGTH?: string;
	MAX_URL_LENGTH?: string;
	MAX_HEADER_BYTES?: string;
}

const wholeNumber = (min: number, max: number, fallback: number) =>
	z._default(
		z.pipe(
			z.string().check(z.trim(), z.regex(/^\d+$/, "must be a whole number")),
			z.pipe(
				z.transform(Number),
				z.number().check(z.minimum(min, `must be at least ${min}`), z.maximum(max, `must be at most ${max}`)),
			),
		),
		fallback,
	);

const schema = z.object({
	MAX_CONCURRENCY: wholeNumber(1, 65_536, 1),
	IDENTIFY_INTERVAL_MS: wholeNumber(1, 600_000, 5500),
	DISCORD_API_URL: z._default(
		z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
		"https://discord.com/api/v10",
	),
	WAIT_TIMEOUT_MS: wholeNumber(1000, 86_400_000, 3_600_000),
	MAX_WAITERS_PER_QUEUE: wholeNumber(1, 1_000_000, 20_000),
	RETRY_GRACE_MS: wholeNumber(0, 3_600_000, 10_000),
	DISCORD_TOKEN: z.optional(z.string()),
	BUDGET_RESERVE: z._default(
		z.pipe(
			z
				.string()
				.check(
					z.trim(),
					z.regex(
						/^\d+$|^(100|\d{1,2}(\.\d+)?)%$/,
						'must be a whole number of starts or a percentage up to 100%, such as "5%"',
					),
				),
			z.transform(
				(value): ReserveSetting =>
					value.endsWith("%") ? { percentOfTotal: Number(value.slice(0, -1)) } : { starts: Number(value) },
			),
		),
		{ percentOfTotal: 5 },
	),
	// Set but unusable fails closed (every request 500) rather than leaving the queues open.
	QUEUE_SECRET: z.optional(
		z
			.string()
			.check(
				z.trim(),
				z.regex(/^[\x21-\x7e]{16,1024}$/, "must be 16 to 1024 visible ASCII characters, without spaces"),
			),
	),
	MAX_QUEUE_NAME_LENGTH: wholeNumber(1, 256, defaultMaxQueueNameLength),
	MAX_URL_LENGTH: wholeNumber(256, 16_384, 2048),
	MAX_HEADER_BYTES: wholeNumber(1024, 131_072, 16_384),
});

export class ConfigError extends Error {
	override name = "ConfigError";
}

/** Parses the deployment's settings; the error names every variable that is wrong. */
export function parseConfig(source: ConfigSource): Config {
	const parsed = schema.safeParse(source);
	if (!parsed.success) {
		const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`);
		throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
	}
	const vars = parsed.data;
	return {
		maxConcurrency: vars.MAX_CONCURRENCY,
		identifyIntervalMs: vars.IDENTIFY_INTERVAL_MS,
		discordApiUrl: vars.DISCORD_API_URL.replace(/\/+$/, ""),
		waitTimeoutMs: vars.WAIT_TIMEOUT_MS,
		maxWaitersPerQueue: vars.MAX_WAITERS_PER_QUEUE,
		retryGraceMs: vars.RETRY_GRACE_MS,
		discordToken: vars.DISCORD_TOKEN?.trim() || undefined,
		budgetReserve: vars.BUDGET_RESERVE,
		queueSecret: vars.QUEUE_SECRET,
		maxQueueNameLength: vars.MAX_QUEUE_NAME_LENGTH,
		maxUrlLength: vars.MAX_URL_LENGTH,
		maxHeaderBytes: vars.MAX_HEADER_BYTES,
		warnings: warningsOf(vars.IDENTIFY_INTERVAL_MS),
	};
}

function warningsOf(identifyIntervalMs: number): string[] {
	if (identifyIntervalMs >= discordIdentifyIntervalMs) return [];
	return [
		`IDENTIFY_INTERVAL_MS is ${identifyIntervalMs} ms, below Discord's ${discordIdentifyIntervalMs} ms: ` +
			"shards will be rate-limited (Invalid Session). Use it for tests only.",
	];
}

const parsedConfigs = new WeakMap<object, Config>();

/** `parseConfig`, remembered per env object so a request does not parse it again. */
export function configOf(env: ConfigSource): Config {
	let config = parsedConfigs.get(env);
	if (!config) {
		config = parseConfig(env);
		parsedConfigs.set(env, config);
		for (const message of config.warnings) log("unsafe_config", { level: "warn", message });
	}
	return config;
}
