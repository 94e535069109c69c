import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { QueueStatus } from "../src/status";
import {
	acquire,
	acquireRequest,
	armedAlarm,
	freshQueue,
	intervalMs,
	placeCount,
	type QueueStub,
	retryGraceMs,
	track,
	useFakeClock,
	waitingCount,
} from "./helpers";

/** Cancels as the Worker does when its client disconnects or its deadline passes. */
async function clientLeaves(stub: QueueStub, ticket: string): Promise<void> {
	expect(await stub.cancel(ticket)).toBe(true);
}

const statusOf = async (stub: QueueStub): Promise<QueueStatus> => stub.status("test");

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8, 12 share bucket 0.
// RETRY_GRACE_MS is 10000 (wrangler.toml), IDENTIFY_INTERVAL_MS 2000.
describe("GatewayQueue keeps a departed shard's place for its retry (RETRY_GRACE_MS)", () => {
	it("gives the place back to a retry within the grace, ahead of later arrivals", async () => {
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		await acquire(stub, acquireRequest(0));
		const gone = acquireRequest(4);
		const leaving = acquire(stub, gone);
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(1));
		const later = track(acquire(stub, acquireRequest(8)));
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(2));

		await clientLeaves(stub, gone.ticket);
		expect(await leaving).toEqual({ ok: false, error: "cancelled" });
		expect((await statusOf(stub)).buckets).toEqual([expect.objectContaining({ waiting: 1, shards: [8] })]);

		clock.advance(intervalMs / 2);
		const retry = acquire(stub, acquireRequest(4));
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(2));
		expect((await statusOf(stub)).buckets).toEqual([expect.objectContaining({ waiting: 2, shards: [4, 8] })]);

		clock.advance(intervalMs / 2);
		await runDurableObjectAlarm(stub);
		expect(await retry).toMatchObject({ ok: true, shard: 4, waitedMs: intervalMs / 2 });
		expect(later.settled()).toBe(false);
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await later.promise).toMatchObject({ ok: true, shard: 8 });
	});

	it("grants nothing to the departed shard: its turn goes to the next in line, and its retry is then first", async () => {
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		await acquire(stub, acquireRequest(0));
		const gone = acquireRequest(4);
		const leaving = acquire(stub, gone);
		const next = acquire(stub, acquireRequest(8));
		const last = track(acquire(stub, acquireRequest(12)));
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(3));
		await clientLeaves(stub, gone.ticket);
		await leaving;

		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await next).toMatchObject({ ok: true, shard: 8 });
		const retry = acquire(stub, acquireRequest(4));
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(2));

		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await retry).toMatchObject({ ok: true, shard: 4 });
		expect(last.settled()).toBe(false);
	});

	it("grants a retry at once when its bucket is due, and disarms the alarm when nothing is left", async () => {
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		await acquire(stub, acquireRequest(0));
		const gone = acquireRequest(4);
		const leaving = acquire(stub, gone);
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(1));
		const leftAtMs = clock.now;
		await clientLeaves(stub, gone.ticket);
		await leaving;
		expect(await armedAlarm(stub)).toBe(leftAtMs + retryGraceMs);

		// The bucket's turn passes with nobody to grant: no slot is taken.
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await placeCount(stub)).toBe(1);
		expect(await armedAlarm(stub)).toBe(leftAtMs + retryGraceMs);

		expect(await acquire(stub, acquireRequest(4))).toMatchObject({ ok: true, shard: 4, waitedMs: 0 });
		expect(await placeCount(stub)).toBe(0);
		expect(await armedAlarm(stub)).toBeNull();
	});

	it("drops the place after the grace: a later retry goes to the back", async () => {
		const stub = freshQueue();
		const clock = await useFakeClock(stub);
		await acquire(stub, acquireRequest(0));
		const gone = acquireRequest(4);
		const leaving = acquire(stub, gone);
		const waiting = [acquire(stub, acquireRequest(8)), acquire(stub, acquireRequest(12))];
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(3));
		await clientLeaves(stub, gone.ticket);
		await leaving;

		clock.advance(retryGraceMs);
		const retry = track(acquire(stub, acquireRequest(4)));
		// The bucket was due: the first of the line is granted as the retry arrives.
		expect(await waiting[0]).toMatchObject({ ok: true, shard: 8 });
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(2));
		expect((await statusOf(stub)).buckets).toEqual([expect.objectContaining({ shards: [12, 4] })]);
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await waiting[1]).toMatchObject({ ok: true, shard: 12 });
		expect(retry.settled()).toBe(false);
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await retry.promise).toMatchObject({ ok: true, shard: 4 });
	});

	it("counts places kept for a retry against MAX_WAITERS_PER_QUEUE (50 here); their retries still fit", async () => {
		const stub = freshQueue();
		await useFakeClock(stub);
		const requests = Array.from({ length: 51 }, (_, index) => acquireRequest(index * 4));
		const results = requests.map((request) => acquire(stub, request));
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(50));
		for (const request of requests.slice(1, 11)) await clientLeaves(stub, request.ticket);
		expect([await waitingCount(stub), await placeCount(stub)]).toEqual([40, 50]);

		expect(await acquire(stub, acquireRequest(9999 * 4))).toEqual({ ok: false, error: "overloaded" });
		const retry = acquireRequest(4);
		void acquire(stub, retry);
		await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(41));
		expect(await placeCount(stub)).toBe(50);
		expect(await results[1]).toEqual({ ok: false, error: "cancelled" });
	});
});
