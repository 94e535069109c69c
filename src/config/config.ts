import { log } from "../log";
import { parseSettings, type SettingSource, type SettingValues } from "./settings";

/** Settings of one deployment (`./settings.ts`), read from its vars and secrets once per isolate. */
export interface Config extends SettingValues {
	/** Settings that are allowed but unsafe against Discord; logged once, shown in the status. */
	warnings: readonly string[];
}

/** Discord's own spacing of two IDENTIFYs of one bucket. */
export const discordIdentifyIntervalMs = 5000;

export class ConfigError extends Error {
	override name = "ConfigError";
}

/** Parses the deployment's settings; the error names every variable that is wrong. */
export function parseConfig(source: SettingSource): Config {
	const parsed = parseSettings(source);
	if ("problems" in parsed) throw new ConfigError(`Invalid configuration: ${parsed.problems.join("; ")}`);
	return { ...parsed.values, warnings: warningsOf(parsed.values.identifyIntervalMs) };
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
export function configOf(env: SettingSource): Config {
	let config = parsedConfigs.get(env);
	if (!config) {
		config = parseConfig(env);
		parsedConfigs.set(env, config);
		for (const message of config.warnings) log("unsafe_config", { level: "warn", message });
	}
	return config;
}
