/** `Resources`: what a test file starts is stopped even when another part fails to start (bug 8). */
import { expect, test, vi } from "vitest";
import { launchChromium } from "../tools/browser.ts";
import { type DevServer, startDevServer } from "../tools/dev-server.ts";
import { Resources } from "../tools/resources.ts";

function groupAlive(processGroupId: number): boolean {
	try {
		process.kill(-processGroupId, 0);
		return true;
	} catch {
		return false;
	}
}

test("when the browser cannot launch, the wrangler dev started beside it is stopped, its whole process group", async () => {
	const resources = new Resources();
	let server: DevServer | undefined;
	const starting = resources.startAll<[DevServer, unknown]>([
		{
			start: async () => {
				server = await startDevServer();
				return server;
			},
			stop: (started) => started.stop(),
		},
		{ start: () => launchChromium("/nonexistent/chromium"), stop: async () => {} },
	]);
	try {
		await expect(starting).rejects.toThrow(/chromium/i);
		expect(server).toBeDefined();
		// Killed processes linger a moment until reaped.
		await vi.waitFor(() => expect(groupAlive(server?.processGroupId ?? 0)).toBe(false), {
			timeout: 5000,
			interval: 50,
		});
		await expect(fetch(`${server?.url}/_/health`)).rejects.toThrow();
	} finally {
		// Had the test failed, what is left is stopped here.
		await resources.stopAll();
		await server?.stop();
	}
});

test("stopAll stops the last started first, goes on past a stop that fails, then throws that failure", async () => {
	const resources = new Resources();
	const stopped: string[] = [];
	for (const name of ["discord", "queue", "browser"]) {
		await resources.start({
			start: async () => name,
			stop: async (value) => {
				stopped.push(value);
				if (value === "queue") throw new Error("queue would not stop");
			},
		});
	}
	await expect(resources.stopAll()).rejects.toThrow("queue would not stop");
	expect(stopped).toEqual(["browser", "queue", "discord"]);
	// Once stopped, nothing is stopped twice.
	await resources.stopAll();
	expect(stopped).toHaveLength(3);
});
