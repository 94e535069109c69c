/** `npm run serve` refuses to start on a bad setting, names the variable, and never prints a token. */
import { expect, test } from "vitest";
import { freePort } from "../tools/dev-server.ts";
import { spawnServe } from "../tools/self-host-server.ts";

const token = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GfAkE0.misconfigured-test-token_0123456789";

/** Runs the launcher until it exits by itself (or fails the test after `timeoutMs`). */
async function refusal(env: Record<string, string>, timeoutMs = 30_000) {
	const run = spawnServe({ STATE_DIR: "/nonexistent-not-needed", DISCORD_TOKEN: token, ...env });
	const timer = setTimeout(() => process.kill(-(run.child.pid as number), "SIGKILL"), timeoutMs);
	const { code } = await run.exited;
	clearTimeout(timer);
	const lines = run
		.stdout()
		.split("\n")
		.filter(Boolean)
		.map((line) => JSON.parse(line) as Record<string, unknown>);
	return { code, misconfigured: lines.find((line) => line.event === "misconfigured"), output: run.output() };
}

test("a bad var of wrangler.toml: exit 78, once workerd runs, with the Worker's own message naming it", async () => {
	const { code, misconfigured, output } = await refusal({ PORT: String(await freePort()), MAX_CONCURRENCY: "0" });
	expect(code).toBe(78);
	expect(misconfigured).toMatchObject({ level: "error", message: expect.stringContaining("MAX_CONCURRENCY") });
	expect(output).not.toContain(token);
});

test("a bad launcher setting: exit 78 before anything starts, naming each variable", async () => {
	const { code, misconfigured } = await refusal({ PORT: "http", HOST: "not a host" });
	expect(code).toBe(78);
	expect(misconfigured?.message).toContain("PORT must be a port number");
	expect(misconfigured?.message).toContain("HOST must be");
});
