/**
 * Stopping `npm run serve` as a supervisor or a terminal does, while a shard's
 * request is held: workerd alone would wait for that request (it drains on
 * SIGTERM), so the launcher SIGKILLs it after a short grace.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, expect, test } from "vitest";
import { processesInGroup, type SelfHostServer, startSelfHost } from "../tools/self-host-server.ts";

const started: SelfHostServer[] = [];
afterAll(async () => {
	for (const server of started) await server.stop();
});

/** A server whose bucket 0 is busy for a minute, with one request held in it. */
async function serverHoldingARequest(): Promise<{ server: SelfHostServer; held: Promise<unknown> }> {
	const server = await startSelfHost({ vars: { IDENTIFY_INTERVAL_MS: "60000" } });
	started.push(server);
	expect((await fetch(`${server.url}/stop?shard=0`)).status).toBe(200);
	const held = fetch(`${server.url}/stop?shard=1`).then(
		(response) => response.status,
		(error: unknown) => error,
	);
	await sleep(200);
	return { server, held };
}

async function untilGroupGone(processGroupId: number, timeoutMs: number): Promise<number> {
	const startMs = performance.now();
	while ((await processesInGroup(processGroupId)).length > 0) {
		if (performance.now() - startMs > timeoutMs) throw new Error(`process group ${processGroupId} still running`);
		await sleep(50);
	}
	return performance.now() - startMs;
}

const stops: [string, (server: SelfHostServer) => void][] = [
	["SIGTERM to npm alone, as a container runtime sends it", (server) => process.kill(server.pid, "SIGTERM")],
	["SIGTERM to every process, as systemd does", (server) => process.kill(-server.processGroupId, "SIGTERM")],
	["Ctrl-C: SIGINT to the terminal's process group", (server) => process.kill(-server.processGroupId, "SIGINT")],
];

test.for(stops)("%s: everything stops within a few seconds, a held request included", async ([, stop]) => {
	const { server, held } = await serverHoldingARequest();
	stop(server);
	await untilGroupGone(server.processGroupId, 5000);
	expect(await server.exited).toEqual({ code: 0, signal: null });
	// The held request's connection closed: its shard asks again.
	expect(await held).toBeInstanceOf(Error);
	expect(await fetch(`${server.url}/_/health`).catch((error: unknown) => error)).toBeInstanceOf(Error);
});
