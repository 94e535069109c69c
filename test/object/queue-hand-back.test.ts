import { describe, expect, it } from "vitest";
import { fakeDiscord, smallBot } from "../support/discord-fake";
import {
	acquire,
	acquireRequest,
	botRequest,
	storedBudgetOf as budgetOf,
	evictObject,
	fireTimerOnTime,
	grantHistoryOf,
	hold,
	intervalMs,
	queueOnFakeClock,
	savePlaces,
	storedOf,
	waitingCount,
} from "../support/queue";

// Tokenless queues run with MAX_CONCURRENCY=4 here: shards 0, 4, 8 share bucket 0.
describe("GatewayQueue takes back a grant its request never received", () => {
	it("gives the slot to the next in line, keeps the shard's place at the head, and forgets the grant", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const firstAtMs = clock.now;
		await acquire(stub, acquireRequest(0));
		const undelivered = acquireRequest(4);
		const [handedOver, next, last] = await hold(stub, undelivered, 8, 12);
		await savePlaces(stub, clock);
		await fireTimerOnTime(stub, clock);
		expect(await handedOver).toMatchObject({ ok: true, shard: 4 });

		expect(await stub.handBack(undelivered.ticket)).toBe(true);
		expect(await next).toMatchObject({ ok: true, shard: 8, grantedAtMs: firstAtMs + intervalMs });
		expect((await grantHistoryOf(stub)).map((grant) => grant.shard)).toEqual([0, 8]);
		expect((await stub.metrics()).metrics.handedBack).toBe(1);
		expect(await stub.handBack(undelivered.ticket)).toBe(false);

		// The shard's retry goes before shard 12, which came after it.
		const [retry] = await hold(stub, 4);
		await savePlaces(stub, clock);
		await fireTimerOnTime(stub, clock);
		expect(await retry).toMatchObject({ ok: true, shard: 4, grantedAtMs: firstAtMs + 2 * intervalMs });
		expect(last.settled()).toBe(false);
		expect(await waitingCount(stub)).toBe(1);
	});

	it("gives the start back to the bot's budget", async () => {
		fakeDiscord(smallBot(1, 60));
		const { stub } = await queueOnFakeClock();
		const undelivered = botRequest(0);
		expect(await acquire(stub, undelivered)).toMatchObject({ ok: true });
		const spent = (await budgetOf(stub))?.remaining ?? 0;
		expect(await stub.handBack(undelivered.ticket)).toBe(true);
		expect((await budgetOf(stub))?.remaining).toBe(spent + 1);
		// The bucket's spacing is as before the grant: the retry is granted at once.
		expect(await acquire(stub, botRequest(0))).toMatchObject({ ok: true, waitedMs: 0 });
		expect((await budgetOf(stub))?.remaining).toBe(spent);
	});

	it("keeps a grant spent once its bucket granted again, or after a restart", async () => {
		const { stub, clock } = await queueOnFakeClock();
		const first = acquireRequest(0);
		await acquire(stub, first);
		const [second] = await hold(stub, 4);
		await savePlaces(stub, clock);
		await fireTimerOnTime(stub, clock);
		await second;
		expect(await stub.handBack(first.ticket)).toBe(false);
		expect((await storedOf(stub)).lastGrants).toEqual([[0, clock.now]]);

		const last = acquireRequest(1);
		await acquire(stub, last);
		const restarted = await evictObject(stub, clock);
		expect(await restarted.handBack(last.ticket)).toBe(false);
	});
});
