/**
 * Tools that some tests need and a fresh machine may lack (Chromium, Debian's discord.py). Without
 * one, those tests are skipped with one line saying how to get it; in CI (`CI` set), where
 * `.ci/run` installs them, a missing one fails the file instead.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export interface Tool {
	/** Where it is, when found. */
	path: string | undefined;
	/** For `describe.skipIf`. */
	missing: boolean;
}

export function requireTool(name: string, path: string | undefined, howToGet: string): Tool {
	if (path !== undefined) return { path, missing: false };
	if (process.env.CI) throw new Error(`${name} is required in CI and was not found: ${howToGet}`);
	// Straight to stderr: the reporter keeps no console line of a file whose tests did not fail.
	process.stderr.write(`Skipping the tests that need ${name}, which was not found: ${howToGet}\n`);
	return { path, missing: true };
}

/** Debian's python3 with its `discord` and `aiohttp` packages (a pyenv or venv python3 has neither), or `PYTHON`. */
export function findDiscordPy(): string | undefined {
	const python = process.env.PYTHON ?? "/usr/bin/python3";
	if (!existsSync(python)) return undefined;
	const probe = spawnSync(python, ["-c", "import discord, aiohttp"], { stdio: "ignore", timeout: 30_000 });
	return probe.status === 0 ? python : undefined;
}
