/**
 * The Discordeno adapter on stand-in shards and a fake fetch: which shards get gated (those added
 * later, in resharding, in a replaced collection, made by hand), and what a close or a second
 * identify does to a wait. End to end with the real Discordeno: discordeno.test.ts.
 */
import { describe, expect, test } from "vitest";
import {
	type DiscordenoGatewayLike,
	type DiscordenoShardLike,
	withIdentifyQueue,
	withIdentifyQueueShard,
} from "../packages/client/src/index.ts";
import { errorBody, fakeDelays, fakeFetch, grantBody, settle } from "./support/client-fakes.ts";

const url = "https://queue.test/mybot";
const token = "MTA1.fake.token";

/** A shard that records what it was asked to do. */
function shardOf(id: number) {
	const calls: string[] = [];
	const shard: DiscordenoShardLike = {
		id,
		identify: async () => void calls.push("identify"),
		close: async (code) => void calls.push(`close ${code}`),
	};
	return { shard, calls };
}

function setUp() {
	const { fetch, requests } = fakeFetch();
	const delays = fakeDelays();
	const options = { url, token, fetch, delay: delays.delay, random: () => 0.5, warn: () => {} };
	const gateway: DiscordenoGatewayLike = { shards: new Map(), resharding: { shards: new Map() } };
	return { requests, delays, options, gateway };
}

describe("withIdentifyQueue", () => {
	test("a shard added to the manager identifies only after its grant", async () => {
		const { requests, options, gateway } = setUp();
		withIdentifyQueue(gateway, options);
		const { shard, calls } = shardOf(4);
		gateway.shards.set(4, shard);
		void shard.identify();
		await settle();
		expect(calls).toEqual([]);
		expect(requests[0]?.url.searchParams.get("shard")).toBe("4");
		requests[0]?.respond(200, grantBody);
		await settle();
		expect(calls).toEqual(["identify"]);
	});

	test("shards there before, in resharding, and in a collection that replaces the manager's are gated too", async () => {
		const { requests, options, gateway } = setUp();
		const before = shardOf(0);
		gateway.shards.set(0, before.shard);
		withIdentifyQueue(gateway, options);
		const resharded = shardOf(1);
		gateway.resharding.shards.set(1, resharded.shard);
		// Discordeno ends resharding with `gateway.shards = new Collection(gateway.resharding.shards)`.
		gateway.shards = new Map(gateway.resharding.shards);
		const later = shardOf(2);
		gateway.shards.set(2, later.shard);
		for (const { shard } of [before, resharded, later]) void shard.identify();
		await settle();
		expect(requests.map((request) => request.url.searchParams.get("shard"))).toEqual(["0", "1", "2"]);
		expect([before, resharded, later].flatMap(({ calls }) => calls)).toEqual([]);
	});

	test("a shard closed while it waits gives up its wait and does not identify; then it closes", async () => {
		const { requests, options, gateway } = setUp();
		withIdentifyQueue(gateway, options);
		const { shard, calls } = shardOf(4);
		gateway.shards.set(4, shard);
		const identified = shard.identify();
		await settle();
		await shard.close(3000, "Shard shutting down.");
		await identified;
		expect(requests[0]?.signal.aborted).toBe(true);
		expect(calls).toEqual(["close 3000"]);
	});

	test("a second identify of a shard takes over the first one's wait: one grant, one IDENTIFY", async () => {
		const { requests, options, gateway } = setUp();
		withIdentifyQueue(gateway, options);
		const { shard, calls } = shardOf(4);
		gateway.shards.set(4, shard);
		const first = shard.identify();
		await settle();
		void shard.identify();
		await first;
		expect(requests[0]?.signal.aborted).toBe(true);
		requests[1]?.respond(200, grantBody);
		await settle();
		expect(calls).toEqual(["identify"]);
	});

	test("a refusal never reaches Discordeno: it is reported and asked again", async () => {
		const { requests, delays, options, gateway } = setUp();
		const errors: unknown[] = [];
		withIdentifyQueue(gateway, { ...options, onError: (error) => errors.push(error) });
		const { shard, calls } = shardOf(4);
		gateway.shards.set(4, shard);
		void shard.identify();
		await settle();
		requests[0]?.respond(401, errorBody("invalid_token"));
		await settle();
		expect(errors).toEqual([expect.objectContaining({ code: "invalid_token" })]);
		delays.elapse(750);
		await settle();
		requests[1]?.respond(200, grantBody);
		await settle();
		expect(calls).toEqual(["identify"]);
	});

	test("options are checked when it is applied, each error naming its option", () => {
		const { gateway } = setUp();
		expect(() => withIdentifyQueue(gateway, { url: "queue.test" })).toThrow(/^url must/);
		expect(() => withIdentifyQueue(gateway, { url, onError: 1 } as never)).toThrow(/^onError must be a function/);
	});
});

test("withIdentifyQueueShard gates a shard made by hand, once however often it is applied", async () => {
	const { requests, options } = setUp();
	const { shard, calls } = shardOf(7);
	withIdentifyQueueShard(withIdentifyQueueShard(shard, options), options);
	void shard.identify();
	await settle();
	expect(requests).toHaveLength(1);
	requests[0]?.respond(200, grantBody);
	await settle();
	expect(calls).toEqual(["identify"]);
});
