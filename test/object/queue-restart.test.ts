import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { restoredTurnHoldMs } from "../../src/object/gateway-queue";
import { placesFlushMs } from "../../src/object/rounds";
import type { AcquireResult } from "../../src/object/rpc";
import {
	acquire,
	acquireRequest,
	type FakeClock,
	fireTimerOnTime,
	hold,
	intervalMs,
	placeCount,
	type QueueStub,
	queueOnFakeClock,
	resetObject,
	retryGraceMs,
	savedPlacesOf,
	savePlaces,
	statusOf,
	untilWaiting,
	waitingCount,
} from "../support/queue";

type Granted = Extract<AcquireResult, { ok: true }>;

/** Fires the timer until `count` of `results` are granted; returns them in grant order. */
async function grantsOf(stub: QueueStub, clock: FakeClock, results: Promise<AcquireResult>[]): Promise<Granted[]> {
	for (let round = 0; round < results.length * 2 && clock.timer; round++) await fireTimerOnTime(stub, clock);
	const granted = (await Promise.all(results)).filter((result): result is Granted => result.ok);
	return granted.sort((a, b) => a.grantedAtMs - b.grantedAtMs);
}

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8 and 12 share bucket 0.
describe("GatewayQueue across a restart while requests wait", () => {
	it("grants each request that comes back once, in its old order, with the spacing kept", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		expect(await acquire(stub, acquireRequest(0))).toMatchObject({ ok: true });
		const waiting = [4, 8, 12, null].map((shard) => acquireRequest(shard));
		const before = waiting.map((request) => acquire(stub, request).catch(() => "reset" as const));
		await untilWaiting(stub, 4);
		await savePlaces(stub, clock);

		const restarted = await resetObject(stub, clock);
		expect(await Promise.all(before)).toEqual(["reset", "reset", "reset", "reset"]);
		clock.advance(100);
		// The Worker calls again for each, with the same ticket, in whatever order its retries land.
		const after = [3, 1, 2, 0].map((index) => acquire(restarted, waiting[index] ?? acquireRequest(99)));
		await untilWaiting(restarted, 4);
		const grants = await grantsOf(restarted, clock, after);

		expect(grants.map((grant) => grant.shard)).toEqual([4, 8, 12, null]);
		const times = [firstAtMs, ...grants.map((grant) => grant.grantedAtMs)];
		for (let index = 1; index < times.length; index++) {
			expect((times[index] ?? 0) - (times[index - 1] ?? 0)).toBeGreaterThanOrEqual(intervalMs);
		}
		expect(await placeCount(restarted)).toBe(0);
	});

	it("holds a bucket's turn a few seconds for a place whose request has not come back, then skips it and drops it", async () => {
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, acquireRequest(0))).toMatchObject({ ok: true });
		const [gone, back] = [acquireRequest(4), acquireRequest(8)];
		const before = [gone, back].map((request) => acquire(stub, request).catch(() => "reset"));
		await untilWaiting(stub, 2);
		await savePlaces(stub, clock);

		const restarted = await resetObject(stub, clock);
		await Promise.all(before);
		const restoredAtMs = clock.now;
		const [returned] = await hold(restarted, back);
		await fireTimerOnTime(restarted, clock);
		expect(await returned).toMatchObject({ ok: true, shard: 8, grantedAtMs: restoredAtMs + restoredTurnHoldMs });
		expect(await placeCount(restarted)).toBe(1);
		clock.now = restoredAtMs + retryGraceMs;
		await runDurableObjectAlarm(restarted);
		expect(await placeCount(restarted)).toBe(0);
	});

	it("saves the places of requests arriving together in one write, with the next round or placesFlushMs after the first", async () => {
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, acquireRequest(0))).toMatchObject({ ok: true });
		const exec = await runInDurableObject(stub, (_queue, state) => vi.spyOn(state.storage.sql, "exec"));
		const execCalls = () => runInDurableObject(stub, () => exec.mock.calls.length);
		const waiting = await hold(stub, 4, 8);
		clock.advance(placesFlushMs - 1);
		waiting.push(...(await hold(stub, 12)));
		expect(await execCalls()).toBe(0);
		await savePlaces(stub, clock);
		expect(await execCalls()).toBe(1);
		expect(await savedPlacesOf(stub)).toEqual([4, 8, 12]);

		// A round that writes anyway takes the line's changes with it.
		await acquire(stub, acquireRequest(1));
		waiting.push(...(await hold(stub, 5)));
		await acquire(stub, acquireRequest(2));
		expect(await savedPlacesOf(stub)).toEqual([4, 8, 12, 5]);
		for (let round = 0; round < 8 && clock.timer; round++) await fireTimerOnTime(stub, clock);
		await Promise.all(waiting);
		expect(await savedPlacesOf(stub)).toEqual([]);
	});

	it("forgets the places not saved yet (a restart within placesFlushMs of their arrival): their requests come back behind the saved ones, each granted once", async () => {
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, acquireRequest(0))).toMatchObject({ ok: true });
		const [saved, unsaved] = [acquireRequest(4), acquireRequest(8)];
		const savedBefore = acquire(stub, saved).catch(() => "reset");
		await untilWaiting(stub, 1);
		await savePlaces(stub, clock);
		const unsavedBefore = acquire(stub, unsaved).catch(() => "reset");
		await untilWaiting(stub, 2);

		const restarted = await resetObject(stub, clock);
		await Promise.all([savedBefore, unsavedBefore]);
		// Read back on the first call: one place.
		expect((await statusOf(restarted)).waiting).toBe(0);
		expect(await placeCount(restarted)).toBe(1);
		// The unsaved request's retry lands first; the saved place still goes first.
		const after = [acquire(restarted, unsaved), acquire(restarted, saved)];
		await untilWaiting(restarted, 2);
		const grants = await grantsOf(restarted, clock, after);
		expect(grants.map((grant) => grant.shard)).toEqual([4, 8]);
		expect(await placeCount(restarted)).toBe(0);
	});

	it("keeps the place of a request that was superseded before the restart for the newer request only", async () => {
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, acquireRequest(0))).toMatchObject({ ok: true });
		const older = acquireRequest(4);
		const [olderAnswer] = await hold(stub, older);
		const newer = acquireRequest(4);
		const newerAnswer = acquire(stub, newer).catch(() => "reset");
		expect(await olderAnswer).toEqual({ ok: false, error: "superseded" });
		await savePlaces(stub, clock);

		const restarted = await resetObject(stub, clock);
		await newerAnswer;
		const [again] = await hold(restarted, newer);
		const [grant] = await grantsOf(restarted, clock, [again]);
		expect(grant).toMatchObject({ ok: true, shard: 4 });
	});

	it("answers a second call with the same ticket (the Worker past its deadline) with the first call's answer", async () => {
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, acquireRequest(0))).toMatchObject({ ok: true });
		const request = acquireRequest(4);
		const [first] = await hold(stub, request);
		const second = acquire(stub, request);
		expect(await waitingCount(stub)).toBe(1);
		await savePlaces(stub, clock);
		await fireTimerOnTime(stub, clock);
		const [a, b] = await Promise.all([first, second]);
		expect(a).toMatchObject({ ok: true, shard: 4 });
		expect(b).toEqual(a);
		expect((await statusOf(stub)).totals).toMatchObject({ granted: 2, superseded: 0 });
	});

	it("writes in each turn's own transaction, and sets the alarm only when it stops backing up the next wake-up", async () => {
		const { stub, clock } = await queueOnFakeClock();
		expect(await acquire(stub, acquireRequest(0))).toMatchObject({ ok: true });
		const spies = await runInDurableObject(stub, (_queue, state) => ({
			transactions: vi.spyOn(state.storage, "transactionSync"),
			alarms: vi.spyOn(state.storage, "setAlarm"),
		}));
		const count = () =>
			runInDurableObject(stub, () => [spies.transactions.mock.calls.length, spies.alarms.mock.calls.length]);
		// Bucket 0 waits; bucket 1 is due 100 ms later: its alarm still backs up bucket 0's.
		const waiting = await hold(stub, 4, 8);
		expect(await count()).toEqual([0, 1]);
		clock.advance(100);
		await acquire(stub, acquireRequest(1));
		const [later] = await hold(stub, 5);
		expect(await count()).toEqual([0, 1]);
		// Saving the places moves neither the alarm (an evicted object has none in memory) nor the grants.
		await savePlaces(stub, clock);
		expect(await count()).toEqual([0, 1]);
		await fireTimerOnTime(stub, clock);
		expect(await count()).toEqual([0, 1]);
		// Bucket 1 next, within the backstop; then bucket 0 again, beyond it: the alarm moves.
		await fireTimerOnTime(stub, clock);
		expect(await count()).toEqual([0, 2]);
		await fireTimerOnTime(stub, clock);
		await Promise.all([...waiting, later]);
	});
});
