import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { alarmBackstopMs } from "../../src/object/wake-ups";
import {
	acquire,
	acquireRequest,
	armedAlarm,
	arrive,
	grantHistoryOf,
	hold,
	intervalMs,
	placeCount,
	queueOnFakeClock,
	retryGraceMs,
	storedOf,
	useFakeClock,
	waitingCount,
} from "../support/queue";

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8 share bucket 0.
describe("GatewayQueue takeover and cancel", () => {
	it("lets a retry of a waiting shard take its place; the older request is superseded", async () => {
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, acquireRequest(0));
		const [firstTry, other] = await hold(stub, 4, 8);

		clock.advance(intervalMs / 2);
		const retry = acquire(stub, acquireRequest(4));
		expect(await firstTry).toEqual({ ok: false, error: "superseded" });
		expect(await waitingCount(stub)).toBe(2);

		clock.advance(intervalMs / 2);
		await runDurableObjectAlarm(stub);
		expect(await retry).toMatchObject({ ok: true, shard: 4, waitedMs: intervalMs / 2 });
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await other).toMatchObject({ ok: true, shard: 8 });
	});

	it("gives a cancelled request's place to the next in line, so it takes no slot", async () => {
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, acquireRequest(0));
		const gone = acquireRequest(4);
		const [leaving, staying] = await hold(stub, gone, 8);

		expect(await stub.cancel(gone.ticket)).toBe(true);
		expect(await leaving).toEqual({ ok: false, error: "cancelled" });
		expect(await stub.cancel(gone.ticket)).toBe(false);

		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await staying).toMatchObject({ ok: true, shard: 8, bucket: 0 });
	});

	it("disarms the alarm once the last cancelled waiter's place has expired, granting nothing", async () => {
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, acquireRequest(0));
		const only = acquireRequest(4);
		const leaving = acquire(stub, only);
		await vi.waitFor(async () => expect(await armedAlarm(stub)).not.toBeNull());
		await stub.cancel(only.ticket);
		await leaving;
		// Only the place kept for a retry is left: the alarm comes back when it expires, to drop it.
		expect(await armedAlarm(stub)).toBe(clock.now + retryGraceMs + alarmBackstopMs);
		clock.advance(retryGraceMs);
		await runDurableObjectAlarm(stub);
		expect(await armedAlarm(stub)).toBeNull();
		expect(await placeCount(stub)).toBe(0);
	});

	it("answers overloaded beyond MAX_WAITERS_PER_QUEUE (50 here), and a takeover still fits", async () => {
		const { stub } = await queueOnFakeClock();
		const waiting = await arrive(
			stub,
			Array.from({ length: 51 }, (_, index) => index * 4),
			50,
		);
		expect(await acquire(stub, acquireRequest(9999 * 4))).toEqual({ ok: false, error: "overloaded" });
		void acquire(stub, acquireRequest(4));
		expect(await waiting[1]).toEqual({ ok: false, error: "superseded" });
		expect(await waitingCount(stub)).toBe(50);
	});

	it("resets itself when storage fails, so its waiters get an error instead of hanging, and commits nothing of that round", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		await acquire(stub, acquireRequest(0));
		const waiters = Promise.allSettled(await hold(stub, 4, 8));
		// The round's first row (the bucket's grant) is written; its next one fails.
		await runInDurableObject(stub, (_queue, state) => {
			const exec = state.storage.sql.exec.bind(state.storage.sql);
			vi.spyOn(state.storage.sql, "exec").mockImplementation((query, ...bindings) => {
				if (query.startsWith("INSERT INTO grant_history")) throw new Error("disk on fire");
				return exec(query, ...bindings);
			});
		});
		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub).catch(() => "reset");
		expect(await waiters).toEqual([
			{ status: "rejected", reason: expect.objectContaining({ message: "storage failed" }) },
			{ status: "rejected", reason: expect.objectContaining({ message: "storage failed" }) },
		]);
		// A stub that saw its object reset is broken; a new one reaches the restarted object.
		const restarted = env.GATEWAY_QUEUE.get(stub.id);
		await useFakeClock(restarted, clock);
		expect(await waitingCount(restarted)).toBe(0);
		const stored = await storedOf(restarted);
		expect(stored.lastGrants).toEqual([[0, firstAtMs]]);
		expect(await grantHistoryOf(restarted)).toHaveLength(1);
	});
});
