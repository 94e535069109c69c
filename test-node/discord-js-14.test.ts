/**
 * End to end: discord.js 14's `Client` as the README's snippet builds it (its own bundled
 * `@discordjs/ws` 1), through `QueueIdentifyThrottler`, against the queue and the fake Discord;
 * and the throttler's failures on both `@discordjs/ws` 1 (discord.js 14) and 2 (directly): a shard
 * neither IDENTIFYs without a grant nor reconnects.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { REST } from "@discordjs/rest";
import { WebSocketManager } from "@discordjs/ws";
import { Client, Events } from "discord.js";
import { beforeAll, describe, expect, test, vi } from "vitest";
import { IdentifyQueueError, QueueIdentifyThrottler } from "../packages/client/src/index.ts";
import { freePort } from "../tools/dev-server.ts";
import { expectPaced, queueAndDiscordForTests, recordingFetch, token, within } from "./support/e2e.ts";

const maxConcurrency = 2;
const servers = queueAndDiscordForTests({ shards: 6, maxConcurrency });
/** What a proxy, captive portal or wrong URL answers: `200`, but no grant. */
let portal: { server: Server; url: string };
beforeAll(async () => {
	const server = createServer((_request, response) => {
		response.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>Sign in to the Wi-Fi</title>");
	});
	await servers.resources.start({
		start: async () => {
			server.listen(0, "127.0.0.1");
			await once(server, "listening");
		},
		stop: async () => void server.close(),
	});
	portal = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
});

function clientWith(throttler: QueueIdentifyThrottler, shardCount: number): Client {
	return new Client({
		intents: [],
		shardCount,
		shards: Array.from({ length: shardCount }, (_, shard) => shard),
		rest: { api: servers.discord.restApiBase },
		ws: { buildIdentifyThrottler: () => throttler },
	});
}

test("6 shards of a discord.js 14 Client at max_concurrency 2 all get READY, each IDENTIFY granted and spaced", async (context) => {
	const { fetch, requests } = recordingFetch();
	const throttler = new QueueIdentifyThrottler({ url: `${servers.queue.url}/discord-js-14`, token, fetch });
	const client = clientWith(throttler, 6);
	const ready = new Set<number>();
	client.on(Events.ShardReady, (shard) => ready.add(shard));
	const before = servers.discord.identifies.length;
	try {
		const allReady = once(client, Events.ClientReady);
		await client.login(token);
		await within(20_000, "the client READY", allReady);
	} finally {
		await client.destroy();
	}
	expect([...ready].sort()).toEqual([0, 1, 2, 3, 4, 5]);
	const identifies = servers.discord.identifies.slice(before);
	expect(identifies.map((identify) => identify.shard).sort()).toEqual([0, 1, 2, 3, 4, 5]);
	await expectPaced(context, "discord.js 14 Client, 6 shards", identifies, maxConcurrency, requests);
});

/** One shard (id 0 of 1) on either version, driven by `throttler`; `start` connects, `stop` destroys. */
const versions = {
	"discord.js 14 (@discordjs/ws 1)": (throttler: QueueIdentifyThrottler) => {
		const client = clientWith(throttler, 1);
		return {
			start: async () => void (await client.login(token)),
			stop: () => client.destroy(),
		};
	},
	"@discordjs/ws 2": (throttler: QueueIdentifyThrottler) => {
		const manager = new WebSocketManager({
			token,
			intents: 0,
			shardCount: 1,
			rest: new REST({ api: servers.discord.restApiBase }).setToken(token),
			buildIdentifyThrottler: () => throttler,
		});
		return { start: () => manager.connect(), stop: () => manager.destroy() };
	},
};

describe.each(Object.entries(versions))("the throttler's failures on %s", (version, shardWith) => {
	test("a 200 that is no grant (a captive portal) is reported, and the shard neither IDENTIFYs nor reconnects", async () => {
		const errors: unknown[] = [];
		const throttler = new QueueIdentifyThrottler({ url: `${portal.url}/mybot`, token, onError: (e) => errors.push(e) });
		const shard = shardWith(throttler);
		const [identifiesBefore, connectionsBefore] = [
			servers.discord.identifies.length,
			servers.discord.connectionsOpened(),
		];
		void shard.start().catch(() => undefined);
		try {
			await vi.waitFor(() => expect(errors.length).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 20 });
		} finally {
			await shard.stop();
		}
		expect(errors[0]).toBeInstanceOf(IdentifyQueueError);
		expect(errors[0]).toMatchObject({ code: "not_a_grant", status: 200 });
		expect(servers.discord.identifies.length).toBe(identifiesBefore);
		expect(servers.discord.connectionsOpened() - connectionsBefore).toBe(1);
	});

	test("a queue that cannot be reached is warned about after a few attempts, and the shard waits without IDENTIFY", async () => {
		const warnings: string[] = [];
		const closedPort = await freePort();
		const throttler = new QueueIdentifyThrottler({
			url: `http://127.0.0.1:${closedPort}/mybot`,
			token,
			backoffBaseMs: 20,
			backoffMaxMs: 50,
			warn: (message) => warnings.push(message),
		});
		const shard = shardWith(throttler);
		const identifiesBefore = servers.discord.identifies.length;
		void shard.start().catch(() => undefined);
		try {
			await vi.waitFor(() => expect(warnings).toHaveLength(1), { timeout: 10_000, interval: 20 });
		} finally {
			await shard.stop();
		}
		expect(warnings[0]).toMatch(
			/^identify queue http:\/\/127\.0\.0\.1:\d+\/mybot: shard 0: 3 failed requests in a row/,
		);
		expect(warnings[0]).not.toContain(token);
		expect(servers.discord.identifies.length).toBe(identifiesBefore);
	});

	test("a fetch that throws is reported and retried on the same connection, then the shard IDENTIFYs once", async () => {
		const retries: string[] = [];
		let calls = 0;
		const throttler = new QueueIdentifyThrottler({
			url: `${servers.queue.url}/throws-${version.length}`,
			token,
			backoffBaseMs: 100,
			onRetry: (retry) => retries.push(retry.reason),
			fetch: (input, init) => {
				calls += 1;
				if (calls <= 2) throw new TypeError("a transport that throws");
				return fetch(input, init);
			},
		});
		const shard = shardWith(throttler);
		const [identifiesBefore, connectionsBefore] = [
			servers.discord.identifies.length,
			servers.discord.connectionsOpened(),
		];
		try {
			await within(15_000, "the shard READY", shard.start());
			await vi.waitFor(() => expect(servers.discord.identifies.length - identifiesBefore).toBe(1), { timeout: 5000 });
		} finally {
			await shard.stop();
		}
		expect(retries).toEqual(["TypeError: a transport that throws", "TypeError: a transport that throws"]);
		expect(calls).toBe(3);
		expect(servers.discord.connectionsOpened() - connectionsBefore).toBe(1);
	});
});
