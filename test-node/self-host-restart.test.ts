/** A grant, a SIGKILL of the whole self-hosted process, a restart on the same state folder: the bucket's spacing holds. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { type SelfHostServer, startSelfHost } from "../tools/self-host-server.ts";

// Longer than a restart takes (a few seconds on a busy machine), so the second grant has to wait for it.
const intervalMs = 6000;
const vars = { IDENTIFY_INTERVAL_MS: String(intervalMs) };
const started: SelfHostServer[] = [];
let stateDir: string | undefined;
afterAll(async () => {
	for (const server of started) await server.stop();
	if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

async function grantedAt(server: SelfHostServer, shard: number): Promise<{ granted_at: number; waited_ms: number }> {
	const response = await fetch(`${server.url}/restart?shard=${shard}`);
	expect(response.status).toBe(200);
	return (await response.json()) as { granted_at: number; waited_ms: number };
}

test("after a SIGKILL and a restart on the same state folder, the next grant of a bucket still waits the interval", async () => {
	stateDir = await mkdtemp(join(tmpdir(), "gateway-queue-restart-"));
	const first = await startSelfHost({ vars, stateDir });
	started.push(first);
	const before = await grantedAt(first, 0);
	await first.crash();

	const second = await startSelfHost({ vars, stateDir });
	started.push(second);
	const after = await grantedAt(second, 1);
	expect(after.waited_ms).toBeGreaterThan(0);
	expect(after.granted_at - before.granted_at).toBeGreaterThanOrEqual(intervalMs);
});
