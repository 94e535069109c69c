import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { alarmBackstopMs } from "../../src/object/wake-ups";
import {
	acquire,
	acquireRequest,
	armedAlarm,
	arrive,
	type FakeClock,
	hold,
	intervalMs,
	placeCount,
	type QueueStub,
	queueOnFakeClock,
	retryGraceMs,
	statusOf,
	track,
	untilWaiting,
	waitingCount,
} from "../support/queue";

/**
 * Shard 0 granted; shard 4, then `behind`, waiting in bucket 0; then shard 4's
 * client leaves, and the object is told as the Worker tells it on a disconnect or
 * its deadline: `cancel(ticket)`.
 */
async function lineWithDepartedShard4(...behind: number[]) {
	const { stub, clock } = await queueOnFakeClock();
	await acquire(stub, acquireRequest(0));
	const gone = acquireRequest(4);
	const [leaving, ...waiting] = await hold(stub, gone, ...behind);
	const leftAtMs = clock.now;
	expect(await stub.cancel(gone.ticket)).toBe(true);
	expect(await leaving).toEqual({ ok: false, error: "cancelled" });
	return { stub, clock, waiting, leftAtMs };
}

/** The bucket's next turn, by the alarm. */
async function nextTurn(stub: QueueStub, clock: FakeClock): Promise<void> {
	clock.advance(intervalMs);
	await runDurableObjectAlarm(stub);
}

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8, 12 share bucket 0.
// RETRY_GRACE_MS is 10000 (wrangler.toml), IDENTIFY_INTERVAL_MS 2000.
describe("GatewayQueue keeps a departed shard's place for its retry (RETRY_GRACE_MS)", () => {
	it("gives the place back to a retry within the grace, ahead of later arrivals", async () => {
		const { stub, clock, waiting } = await lineWithDepartedShard4(8);
		expect((await statusOf(stub)).buckets).toEqual([expect.objectContaining({ waiting: 1, shards: [8] })]);

		clock.advance(intervalMs / 2);
		const [retry] = await hold(stub, 4);
		expect((await statusOf(stub)).buckets).toEqual([expect.objectContaining({ waiting: 2, shards: [4, 8] })]);

		clock.advance(intervalMs / 2);
		await runDurableObjectAlarm(stub);
		expect(await retry).toMatchObject({ ok: true, shard: 4, waitedMs: intervalMs / 2 });
		expect(waiting[0]?.settled()).toBe(false);
		await nextTurn(stub, clock);
		expect(await waiting[0]).toMatchObject({ ok: true, shard: 8 });
	});

	it("grants nothing to the departed shard: its turn goes to the next in line, and its retry is then first", async () => {
		const { stub, clock, waiting } = await lineWithDepartedShard4(8, 12);
		await nextTurn(stub, clock);
		expect(await waiting[0]).toMatchObject({ ok: true, shard: 8 });
		const [retry] = await hold(stub, 4);

		await nextTurn(stub, clock);
		expect(await retry).toMatchObject({ ok: true, shard: 4 });
		expect(waiting[1]?.settled()).toBe(false);
	});

	it("grants a retry at once when its bucket is due, and disarms the alarm when nothing is left", async () => {
		const { stub, clock, leftAtMs } = await lineWithDepartedShard4();
		expect(await armedAlarm(stub)).toBe(leftAtMs + retryGraceMs + alarmBackstopMs);

		// The bucket's turn passes with nobody to grant: no slot is taken.
		await nextTurn(stub, clock);
		expect(await placeCount(stub)).toBe(1);
		expect(await armedAlarm(stub)).toBe(leftAtMs + retryGraceMs + alarmBackstopMs);

		expect(await acquire(stub, acquireRequest(4))).toMatchObject({ ok: true, shard: 4, waitedMs: 0 });
		expect(await placeCount(stub)).toBe(0);
		expect(await armedAlarm(stub)).toBeNull();
	});

	it("drops the place after the grace: a later retry goes to the back", async () => {
		const { stub, clock, waiting } = await lineWithDepartedShard4(8, 12);
		clock.advance(retryGraceMs);
		const retry = track(acquire(stub, acquireRequest(4)));
		// The bucket was due: the first of the line is granted as the retry arrives.
		expect(await waiting[0]).toMatchObject({ ok: true, shard: 8 });
		await untilWaiting(stub, 2);
		expect((await statusOf(stub)).buckets).toEqual([expect.objectContaining({ shards: [12, 4] })]);
		await nextTurn(stub, clock);
		expect(await waiting[1]).toMatchObject({ ok: true, shard: 12 });
		expect(retry.settled()).toBe(false);
		await nextTurn(stub, clock);
		expect(await retry).toMatchObject({ ok: true, shard: 4 });
	});

	it("counts places kept for a retry against MAX_WAITERS_PER_QUEUE (50 here); their retries still fit", async () => {
		const { stub } = await queueOnFakeClock();
		const requests = Array.from({ length: 51 }, (_, index) => acquireRequest(index * 4));
		const results = await arrive(stub, requests, 50);
		for (const request of requests.slice(1, 11)) expect(await stub.cancel(request.ticket)).toBe(true);
		expect([await waitingCount(stub), await placeCount(stub)]).toEqual([40, 50]);

		expect(await acquire(stub, acquireRequest(9999 * 4))).toEqual({ ok: false, error: "overloaded" });
		void acquire(stub, acquireRequest(4));
		await untilWaiting(stub, 41);
		expect(await placeCount(stub)).toBe(50);
		expect(await results[1]).toEqual({ ok: false, error: "cancelled" });
	});
});
