import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { placesFlushMs } from "../../src/object/rounds";
import { alarmBackstopMs, timerLeadMs } from "../../src/object/wake-ups";
import {
	acquire,
	acquireRequest,
	armedAlarm,
	fireTimer,
	hold,
	intervalMs,
	queueOnFakeClock,
	retryGraceMs,
	savePlaces,
	waitingCount,
} from "../support/queue";

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8 share bucket 0.
// The timer is armed `timerLeadMs` before the due time (workerd's timers fire late).
describe("GatewayQueue timer beside the alarm", () => {
	it("arms the timer with the alarm, at the next due grant, and clears both when nothing is held", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		await acquire(stub, acquireRequest(0));
		expect(clock.timer).toBeUndefined();

		const only = acquireRequest(4);
		const [leaving] = await hold(stub, only);
		// The timer comes first to save the new place, which the alarm does not wait for.
		expect(clock.timer?.atMs).toBe(clock.now + placesFlushMs - timerLeadMs);
		expect(await armedAlarm(stub)).toBe(firstAtMs + intervalMs + alarmBackstopMs);
		await savePlaces(stub, clock);
		expect(clock.timer?.atMs).toBe(firstAtMs + intervalMs - timerLeadMs);
		expect(await armedAlarm(stub)).toBe(firstAtMs + intervalMs + alarmBackstopMs);

		await stub.cancel(only.ticket);
		await leaving;
		// The place kept for a retry is never granted; both come back when it expires, to drop it.
		expect(clock.timer?.atMs).toBe(clock.now + retryGraceMs - timerLeadMs);
		expect(await armedAlarm(stub)).toBe(clock.now + retryGraceMs + alarmBackstopMs);
		clock.advance(retryGraceMs);
		expect(await fireTimer(stub, clock)).toBe(true);
		// Its row goes with the next write, or `placesFlushMs` later; then neither is armed.
		expect(await armedAlarm(stub)).toBeNull();
		await savePlaces(stub, clock);
		expect(clock.timer).toBeUndefined();
		expect(await armedAlarm(stub)).toBeNull();
	});

	it("grants on time without the alarm, then moves both to the next due grant", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		await acquire(stub, acquireRequest(0));
		const [second, third] = await hold(stub, 4, 8);

		clock.advance(intervalMs);
		expect(await fireTimer(stub, clock)).toBe(true);
		expect(await second).toMatchObject({ ok: true, shard: 4, grantedAtMs: firstAtMs + intervalMs });
		expect(clock.timer?.atMs).toBe(firstAtMs + 2 * intervalMs - timerLeadMs);
		expect(await armedAlarm(stub)).toBe(firstAtMs + 2 * intervalMs + alarmBackstopMs);

		// The alarm that was due with the timer finds nothing due.
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(third.settled()).toBe(false);
		expect(await waitingCount(stub)).toBe(1);
	});

	it("grants nothing when the timer fires before the due time, and arms it again", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		await acquire(stub, acquireRequest(0));
		const [second] = await hold(stub, 4);

		clock.advance(intervalMs - 1);
		expect(await fireTimer(stub, clock)).toBe(true);
		expect(second.settled()).toBe(false);
		expect(clock.timer?.atMs).toBe(clock.now);

		clock.advance(1);
		expect(await fireTimer(stub, clock)).toBe(true);
		expect(await second).toMatchObject({ ok: true, shard: 4, grantedAtMs: firstAtMs + intervalMs });
	});

	it("clears the timer when the alarm grants first", async () => {
		const { stub, clock } = await queueOnFakeClock();
		await acquire(stub, acquireRequest(0));
		const [second] = await hold(stub, 4);

		clock.advance(intervalMs);
		await runDurableObjectAlarm(stub);
		expect(await second).toMatchObject({ ok: true, shard: 4 });
		expect(clock.timer).toBeUndefined();
	});
});
