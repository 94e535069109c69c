/**
 * End to end: a real Discordeno 21 gateway manager (`@discordeno/gateway`) whose shards ask the queue
 * (`wrangler dev`) through `withIdentifyQueue`, against the fake Discord; then the paths on which
 * Discordeno identifies again by itself (close codes 4003, 4007 and 4009, a non-resumable Invalid
 * Session, a failed resume), each of which must ask the queue too.
 */
import { createGatewayManager, type GatewayManager, ShardSocketCloseCodes } from "@discordeno/gateway";
import { GatewayCloseCodes } from "discord-api-types/v10";
import { expect, test, vi } from "vitest";
import { withIdentifyQueue } from "../packages/client/src/index.ts";
import { expectPaced, queueAndDiscordForTests, recordingFetch, token, within } from "./support/e2e.ts";

const shards = 6;
const maxConcurrency = 2;
const servers = queueAndDiscordForTests({ shards, maxConcurrency });

const quiet = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} };

function gatewayFor(queueName: string, fetch: typeof globalThis.fetch, ready: Set<number>): GatewayManager {
	const gateway = createGatewayManager({
		token,
		intents: 0,
		connection: {
			url: servers.discord.gatewayUrl,
			shards,
			sessionStartLimit: { maxConcurrency, remaining: 1000, total: 1000, resetAfter: 86_400_000 },
		},
		// The queue paces; Discordeno's own 5.3 s per shard would only slow the start.
		spawnShardDelay: 0,
		logger: quiet,
		events: {
			message: (shard, payload) => {
				if (payload.t === "READY") ready.add(shard.id);
			},
		},
	});
	return withIdentifyQueue(gateway, { url: `${servers.queue.url}/${queueName}`, token, fetch });
}

test("6 shards of a Discordeno gateway manager at max_concurrency 2 all get READY, each IDENTIFY granted and spaced", async (context) => {
	const { fetch, requests } = recordingFetch();
	const ready = new Set<number>();
	const gateway = gatewayFor("discordeno", fetch, ready);
	const before = servers.discord.identifies.length;
	try {
		await within(20_000, "all shards READY", gateway.spawnShards());
	} finally {
		await gateway.shutdown(ShardSocketCloseCodes.Shutdown, "test over");
	}
	expect([...ready].sort()).toEqual([0, 1, 2, 3, 4, 5]);
	const identifies = servers.discord.identifies.slice(before);
	expect(identifies.map((identify) => identify.shard).sort()).toEqual([0, 1, 2, 3, 4, 5]);
	expect(identifies.every((identify) => identify.token === `Bot ${token}` && identify.compress === null)).toBe(true);
	await expectPaced(context, "Discordeno, 6 shards", identifies, maxConcurrency, requests);
});

test("every path on which a Discordeno shard identifies again asks the queue first", async (context) => {
	const { fetch, requests } = recordingFetch();
	const ready = new Set<number>();
	const gateway = gatewayFor("discordeno-again", fetch, ready);
	const { discord } = servers;
	const before = discord.identifies.length;
	try {
		await within(20_000, "all shards READY", gateway.spawnShards());
		const again = (shard: number) =>
			vi.waitFor(
				() => expect(discord.identifies.slice(before).filter((identify) => identify.shard === shard)).toHaveLength(2),
				{ timeout: 15_000, interval: 20 },
			);
		// Bucket 0 (shards 0, 2, 4) re-identifies three times at once: the queue must space them.
		discord.closeShard(0, GatewayCloseCodes.SessionTimedOut);
		discord.closeShard(2, GatewayCloseCodes.NotAuthenticated);
		discord.closeShard(4, GatewayCloseCodes.InvalidSeq);
		// A non-resumable Invalid Session: Discordeno waits 1-5 s, then `requestIdentify`.
		discord.invalidateSession(1, false);
		// A resume that fails (closed again while resuming): Discordeno identifies directly.
		discord.failNextResume(3, GatewayCloseCodes.UnknownError);
		discord.closeShard(3, GatewayCloseCodes.UnknownError);
		await Promise.all([0, 2, 4, 1, 3].map(again));
	} finally {
		await gateway.shutdown(ShardSocketCloseCodes.Shutdown, "test over");
	}
	expect(discord.resumes).toContain(3);
	const identifies = discord.identifies.slice(before);
	await expectPaced(context, "Discordeno, re-identify paths", identifies, maxConcurrency, requests);
});

test("a shard shut down while it waits for the queue gives up its wait and never identifies", async () => {
	const { fetch, requests } = recordingFetch();
	const gateway = gatewayFor("discordeno-shutdown", fetch, new Set());
	const { discord } = servers;
	const before = discord.identifies.length;
	// Shard 0 is granted at once; shard 2 (bucket 0 too) then waits one interval.
	void gateway.spawnShards();
	await vi.waitFor(() => expect(requests.filter((request) => request.shard === 2)).toHaveLength(1), {
		timeout: 10_000,
		interval: 10,
	});
	await gateway.shutdown(ShardSocketCloseCodes.Shutdown, "test over");
	const [request] = requests.filter((candidate) => candidate.shard === 2);
	expect(request?.signal?.aborted).toBe(true);
	await new Promise((resolve) => setTimeout(resolve, 800));
	expect(discord.identifies.slice(before).some((identify) => identify.shard === 2)).toBe(false);
});
