/**
 * Every setting of a deployment, listed once: the `Config` type, its parsing,
 * the check of `wrangler.toml`'s defaults, the self-hosted process's variables
 * and the table of docs/configuration.md (`npm run docs`) all come from here;
 * a doc's links are relative to docs/.
 * No relative imports: the Node scripts load this file as it is.
 */
import * as z from "zod/mini";

/** A var's or secret's text (`undefined` when unset) to its value; the message says what is wrong. */
type Parser = z.ZodMiniType<unknown, string>;

interface Setting {
	/** The variable's name, in `wrangler.toml`, `wrangler secret put` and the self-hosted environment. */
	name: string;
	kind: "var" | "secret";
	/** As written in `wrangler.toml`; a secret has none. */
	default?: string;
	/** One line for the settings table. */
	doc: string;
	parse: Parser;
}

const wholeNumber = (min: number, max: number) =>
	z.pipe(
		z.string().check(z.trim(), z.regex(/^\d+$/, "must be a whole number")),
		z.pipe(
			z.transform(Number),
			z.number().check(z.minimum(min, `must be at least ${min}`), z.maximum(max, `must be at most ${max}`)),
		),
	);

export const settings = {
	maxConcurrency: {
		name: "MAX_CONCURRENCY",
		kind: "var",
		default: "1",
		doc: "buckets of queues that know no bot token (a bot's queue uses Discord's `max_concurrency`)",
		parse: wholeNumber(1, 65_536),
	},
	identifyIntervalMs: {
		name: "IDENTIFY_INTERVAL_MS",
		kind: "var",
		default: "5500",
		doc:
			"minimum spacing of two grants in one bucket (why 5500: [below](#choosing-identify_interval_ms)); below 5000 " +
			"is allowed (tests) but flagged: an `unsafe_config` log line, `warnings` in the status, a warning on the dashboard",
		parse: wholeNumber(1, 600_000),
	},
	discordApiUrl: {
		name: "DISCORD_API_URL",
		kind: "var",
		default: "https://discord.com/api/v10",
		doc: "where `/gateway/bot` is read",
		parse: z.pipe(
			z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
			z.transform((url) => url.replace(/\/+$/, "")),
		),
	},
	waitTimeoutMs: {
		name: "WAIT_TIMEOUT_MS",
		kind: "var",
		default: "3600000",
		doc:
			"the Worker's deadline for one call to the object; then, with `Gateway-Queue-Refusals: json`, `503` and the " +
			"place is given up (kept `RETRY_GRACE_MS` for the retry); any other request calls again and keeps its place",
		parse: wholeNumber(1000, 86_400_000),
	},
	maxWaitersPerQueue: {
		name: "MAX_WAITERS_PER_QUEUE",
		kind: "var",
		default: "20000",
		doc:
			"waiting requests one queue holds, places kept for a retry included; more get `503` with " +
			"`Gateway-Queue-Refusals: json`, or are held in the Worker until there is room",
		parse: wholeNumber(1, 1_000_000),
	},
	retryGraceMs: {
		name: "RETRY_GRACE_MS",
		kind: "var",
		default: "10000",
		doc:
			"how long a shard whose client left (disconnect, `WAIT_TIMEOUT_MS`), or whose request has not come back " +
			"after a restart, keeps its place, skipped meanwhile; `0` gives it up at once",
		parse: wholeNumber(0, 3_600_000),
	},
	budgetReserve: {
		name: "BUDGET_RESERVE",
		kind: "var",
		default: "5%",
		doc: "daily session starts never granted: a number (`20`, `0` for none) or a share of `total` (`5%`, at least one)",
		parse: z.pipe(
			z
				.string()
				.check(
					z.trim(),
					z.regex(
						/^\d+$|^(100|\d{1,2}(\.\d+)?)%$/,
						'must be a whole number of starts or a percentage up to 100%, such as "5%"',
					),
				),
			z.transform((value) =>
				value.endsWith("%") ? { percentOfTotal: Number(value.slice(0, -1)) } : { starts: Number(value) },
			),
		),
	},
	maxQueueNameLength: {
		name: "MAX_QUEUE_NAME_LENGTH",
		kind: "var",
		default: "64",
		doc: "longest queue name; longer gets `400`",
		parse: wholeNumber(1, 256),
	},
	maxUrlLength: {
		name: "MAX_URL_LENGTH",
		kind: "var",
		default: "2048",
		doc: "longest path and query, in characters; longer gets `414`",
		parse: wholeNumber(256, 16_384),
	},
	maxHeaderBytes: {
		name: "MAX_HEADER_BYTES",
		kind: "var",
		default: "16384",
		doc: "largest request headers, counted as `name: value` lines; larger gets `431`",
		parse: wholeNumber(1024, 131_072),
	},
	discordToken: {
		name: "DISCORD_TOKEN",
		kind: "secret",
		doc: "the bot token for requests that carry none (the reference server's `DISCORD_TOKEN`)",
		parse: z.pipe(
			z.string(),
			z.transform((token) => token.trim() || undefined),
		),
	},
	queueSecret: {
		name: "QUEUE_SECRET",
		kind: "secret",
		doc:
			"when set, every request but `GET /_/health` and the dashboard page must present it ([Security](security.md)); " +
			"16-1024 visible ASCII characters. Set but unusable fails closed: every request `500`",
		parse: z
			.string()
			.check(
				z.trim(),
				z.regex(/^[\x21-\x7e]{16,1024}$/, "must be 16 to 1024 visible ASCII characters, without spaces"),
			),
	},
} as const satisfies Record<string, Setting>;

export type Settings = typeof settings;
export type SettingName = Settings[keyof Settings]["name"];

/** Each setting's value: a var always has one (its default), a secret may be unset. */
export type SettingValues = {
	-readonly [K in keyof Settings]: Settings[K] extends { default: string }
		? z.output<Settings[K]["parse"]>
		: z.output<Settings[K]["parse"]> | undefined;
};

/** The vars and secrets as the runtime gives them, whatever `wrangler types` says their literal values are. */
export type SettingSource = { [N in SettingName]?: string };

export const secretNames = Object.values(settings)
	.filter((setting) => setting.kind === "secret")
	.map((setting) => setting.name);

/** `MAX_QUEUE_NAME_LENGTH`'s default. */
export const defaultMaxQueueNameLength = Number(settings.maxQueueNameLength.default);

/** Parses every setting; returns the values, or one message per variable that is wrong. */
export function parseSettings(source: SettingSource): { values: SettingValues } | { problems: string[] } {
	const values: Record<string, unknown> = {};
	const problems: string[] = [];
	for (const [key, setting] of Object.entries(settings) as [keyof Settings, Setting][]) {
		const raw = source[setting.name as SettingName] ?? setting.default;
		if (raw === undefined) continue;
		const parsed = setting.parse.safeParse(raw);
		if (parsed.success) values[key] = parsed.data;
		else problems.push(...parsed.error.issues.map((issue) => `${setting.name} ${issue.message}`));
	}
	return problems.length > 0 ? { problems } : { values: values as SettingValues };
}
