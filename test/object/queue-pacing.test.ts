import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sharedRoundWindowMs } from "../../src/core/pacing";
import { alarmBackstopMs } from "../../src/object/wake-ups";
import {
	acquire,
	acquireRequest,
	armedAlarm,
	arrive,
	evictObject,
	hold,
	intervalMs,
	queueOnFakeClock,
	waitingCount,
} from "../support/queue";

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8 share bucket 0.
describe("GatewayQueue pacing", () => {
	it("grants a request to an idle bucket at once and arms no alarm", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const result = await acquire(stub, acquireRequest(5));
		expect(result).toEqual({ ok: true, shard: 5, bucket: 1, waitedMs: 0, grantedAtMs: clock.now });
		expect(await armedAlarm(stub)).toBeNull();
	});

	it("grants the heads of all buckets at once", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const results = await Promise.all([0, 1, 2, 3].map((shard) => acquire(stub, acquireRequest(shard))));
		expect(results.map((result) => result.ok && result.grantedAtMs)).toEqual([
			clock.now,
			clock.now,
			clock.now,
			clock.now,
		]);
	});

	it("holds the next request of a bucket and arms the alarm as a backstop behind its due time", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		await acquire(stub, acquireRequest(0));
		clock.advance(100);
		const [second] = await hold(stub, 4);
		expect(await armedAlarm(stub)).toBe(firstAtMs + intervalMs + alarmBackstopMs);
		expect(second.settled()).toBe(false);
	});

	it("grants nothing on an early or repeated alarm, and re-arms it", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		await acquire(stub, acquireRequest(0));
		const [second] = await hold(stub, 4);

		clock.advance(intervalMs - 1);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await waitingCount(stub)).toBe(1);
		expect(await armedAlarm(stub)).toBe(firstAtMs + intervalMs + alarmBackstopMs);

		clock.advance(1);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await second).toEqual({
			ok: true,
			shard: 4,
			bucket: 0,
			waitedMs: intervalMs,
			grantedAtMs: firstAtMs + intervalMs,
		});
		expect(await runDurableObjectAlarm(stub)).toBe(false);
	});

	it("serves a bucket first in, first out, one grant per interval", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const startMs = clock.now;
		const pending = await arrive(stub, [0, 8, 4, 12], 3);
		for (let round = 1; round <= 3; round++) {
			clock.advance(intervalMs);
			await runDurableObjectAlarm(stub);
		}
		const results = await Promise.all(pending);
		expect(results.map((result) => result.ok && [result.shard, result.grantedAtMs - startMs])).toEqual([
			[0, 0],
			[8, intervalMs],
			[4, 2 * intervalMs],
			[12, 3 * intervalMs],
		]);
	});

	it("grants two buckets due a few ms apart in one round, at the later one's time: one round, never early", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		await acquire(stub, acquireRequest(0));
		clock.advance(sharedRoundWindowMs - 1);
		await acquire(stub, acquireRequest(1));
		const pending = await hold(stub, 4, 5);

		clock.advance(intervalMs - sharedRoundWindowMs + 1);
		await runDurableObjectAlarm(stub);
		expect(pending.map((request) => request.settled())).toEqual([false, false]);
		clock.advance(sharedRoundWindowMs - 1);
		await runDurableObjectAlarm(stub);
		const results = await Promise.all(pending);
		const sharedAtMs = firstAtMs + sharedRoundWindowMs - 1 + intervalMs;
		expect(results.map((result) => result.ok && [result.shard, result.grantedAtMs])).toEqual([
			[4, sharedAtMs],
			[5, sharedAtMs],
		]);
	});

	it("keeps the spacing across an eviction: the last grant is persisted before the answer", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const grantedAtMs = clock.now;
		await acquire(stub, acquireRequest(0));

		const restarted = await evictObject(stub, clock);
		const [next] = await hold(restarted, 4);
		expect(await armedAlarm(restarted)).toBe(grantedAtMs + intervalMs + alarmBackstopMs);
		expect(next.settled()).toBe(false);
	});
});
