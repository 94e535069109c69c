import { describe, expect, it } from "vitest";
import { type Grant, Pacer, type Waiter } from "../../src/core/pacing";
import { waiter } from "../support/waiter";

const intervalMs = 5500;
const shardsOf = (grants: Grant[]) => grants.map((grant) => grant.waiter.shard);

describe("Pacer", () => {
	it("grants a request to an idle bucket at once", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs });
		pacer.enqueue(waiter(0));
		expect(shardsOf(pacer.takeDue(1000))).toEqual([0]);
		expect(pacer.nextDueAtMs()).toBeUndefined();
	});

	it("spaces two grants of one bucket by the interval, never earlier", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs });
		pacer.enqueue(waiter(0));
		pacer.enqueue(waiter(1));
		expect(shardsOf(pacer.takeDue(1000))).toEqual([0]);
		expect(pacer.nextDueAtMs()).toBe(1000 + intervalMs);
		expect(pacer.takeDue(1000 + intervalMs - 1)).toEqual([]);
		expect(shardsOf(pacer.takeDue(1000 + intervalMs))).toEqual([1]);
	});

	it("spaces from the actual grant time when a tick comes late", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs });
		for (const shard of [0, 1, 2]) pacer.enqueue(waiter(shard));
		pacer.takeDue(0);
		expect(shardsOf(pacer.takeDue(intervalMs + 40))).toEqual([1]);
		expect(pacer.nextDueAtMs()).toBe(2 * intervalMs + 40);
	});

	it("serves each bucket first in, first out", () => {
		const pacer = new Pacer({ maxConcurrency: 2, intervalMs });
		for (const shard of [4, 2, 0, 6]) pacer.enqueue(waiter(shard));
		const order = [0, 1, 2, 3].flatMap((round) => shardsOf(pacer.takeDue(round * intervalMs)));
		expect(order).toEqual([4, 2, 0, 6]);
	});

	it("grants one request in every bucket at once: buckets do not wait for each other", () => {
		const pacer = new Pacer({ maxConcurrency: 16, intervalMs });
		for (let shard = 0; shard < 32; shard++) pacer.enqueue(waiter(shard));
		const first = pacer.takeDue(0);
		expect(first.map((grant) => grant.bucket).sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
		expect(pacer.takeDue(intervalMs - 1)).toEqual([]);
		expect(pacer.takeDue(intervalMs)).toHaveLength(16);
	});

	it("grants at most the given number at once, earliest arrivals first", () => {
		const pacer = new Pacer({ maxConcurrency: 4, intervalMs });
		for (const shard of [3, 1, 2, 0]) pacer.enqueue(waiter(shard));
		expect(shardsOf(pacer.takeDue(0, 2))).toEqual([3, 1]);
		expect(pacer.waitingCount).toBe(2);
		expect(shardsOf(pacer.takeDue(0, 0))).toEqual([]);
		expect(shardsOf(pacer.takeDue(0))).toEqual([2, 0]);
	});

	it("puts requests without a shard in bucket 0, each with its own place", () => {
		const pacer = new Pacer({ maxConcurrency: 4, intervalMs });
		expect(pacer.enqueue(waiter(null)).bucket).toBe(0);
		expect(pacer.enqueue(waiter(null)).superseded).toBeUndefined();
		expect(pacer.waitingCount).toBe(2);
	});

	it("lets a retry of a waiting shard take over its place, returning the request it replaces", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs });
		const first = waiter(7);
		pacer.enqueue(waiter(1));
		pacer.enqueue(first);
		pacer.enqueue(waiter(9));
		const retry = waiter(7, 30_000);
		expect(pacer.enqueue(retry).superseded).toBe(first);
		expect(pacer.waitingCount).toBe(3);
		const grants = [0, 1, 2].flatMap((round) => pacer.takeDue(round * intervalMs));
		expect(grants.map((grant) => grant.waiter)).toEqual([
			expect.objectContaining({ shard: 1 }),
			retry,
			expect.anything(),
		]);
		expect(pacer.cancel(first.ticket)).toBeUndefined();
	});

	it("frees a cancelled request's place, and the next in line moves up", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs });
		const gone = waiter(1);
		pacer.enqueue(waiter(0));
		pacer.takeDue(0);
		pacer.enqueue(gone);
		pacer.enqueue(waiter(2));
		expect(pacer.cancel(gone.ticket)).toBe(gone);
		expect(pacer.cancel(gone.ticket)).toBeUndefined();
		expect(shardsOf(pacer.takeDue(intervalMs))).toEqual([2]);
	});

	it("arms nothing once the last waiter of a bucket is cancelled", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs });
		const only = waiter(3);
		pacer.enqueue(only);
		pacer.cancel(only.ticket);
		expect(pacer.nextDueAtMs()).toBeUndefined();
		expect(pacer.takeDue(0)).toEqual([]);
	});

	it("honours the persisted last grant of each bucket after a restart", () => {
		const pacer = new Pacer({ maxConcurrency: 2, intervalMs, lastGrants: [[1, 10_000]] });
		pacer.enqueue(waiter(0));
		pacer.enqueue(waiter(1));
		expect(shardsOf(pacer.takeDue(12_000))).toEqual([0]);
		expect(pacer.nextDueAtMs()).toBe(10_000 + intervalMs);
		expect(pacer.lastGrants()).toEqual(
			new Map([
				[1, 10_000],
				[0, 12_000],
			]),
		);
	});

	it("re-buckets waiting shards in arrival order, every bucket spaced from the latest grant", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs });
		pacer.enqueue(waiter(0));
		pacer.takeDue(1000);
		for (const shard of [3, 1, 2, 5]) pacer.enqueue(waiter(shard));
		const retryOf3 = waiter(3, 2000);
		pacer.enqueue(retryOf3);

		pacer.setMaxConcurrency(2);

		expect(pacer.maxConcurrency).toBe(2);
		expect(pacer.takeDue(1000 + intervalMs - 1)).toEqual([]);
		const grants = pacer.takeDue(1000 + intervalMs);
		expect(grants.map((grant) => [grant.bucket, grant.waiter.shard])).toEqual([
			[1, 3],
			[0, 2],
		]);
		expect(grants[0]?.waiter).toBe(retryOf3);
		expect(shardsOf(pacer.takeDue(1000 + 2 * intervalMs))).toEqual([1]);
		expect(shardsOf(pacer.takeDue(1000 + 3 * intervalMs))).toEqual([5]);
	});

	it("drains every waiter in arrival order", () => {
		const pacer = new Pacer({ maxConcurrency: 4, intervalMs });
		for (const shard of [5, 0, 3]) pacer.enqueue(waiter(shard));
		expect(pacer.drain().map((w) => w.shard)).toEqual([5, 0, 3]);
		expect(pacer.waitingCount).toBe(0);
		expect(pacer.nextDueAtMs()).toBeUndefined();
	});
});

describe("Pacer, read-only views for the status", () => {
	it("lists the waiting lines in bucket order, each in the order it will be granted, takeovers in place", () => {
		const pacer = new Pacer({ maxConcurrency: 4, intervalMs });
		for (const shard of [6, 1, 5, null, 2, 9]) pacer.enqueue(waiter(shard));
		pacer.enqueue(waiter(5));
		expect(pacer.waitingLines().map(({ bucket, waiters }) => [bucket, waiters.map((w) => w.shard)])).toEqual([
			[0, [null]],
			[1, [1, 5, 9]],
			[2, [6, 2]],
		]);
	});

	it("lists the first waiters of each line only when asked, and counts them all", () => {
		const pacer = new Pacer({ maxConcurrency: 2, intervalMs });
		for (const shard of [0, 1, 2, 4, 6]) pacer.enqueue(waiter(shard));
		expect(
			pacer.waitingLines(2).map(({ bucket, waiting, waiters }) => [bucket, waiting, waiters.map((w) => w.shard)]),
		).toEqual([
			[0, 4, [0, 2]],
			[1, 1, [1]],
		]);
	});

	it("tells when each waiting bucket's head is granted: its due time, or now when that has passed", () => {
		const pacer = new Pacer({ maxConcurrency: 2, intervalMs, lastGrants: [[0, 1000]] });
		pacer.enqueue(waiter(0));
		pacer.enqueue(waiter(1));
		expect(pacer.nextGrantsAtMs(2000).get(0)).toBe(1000 + intervalMs);
		expect(pacer.nextGrantsAtMs(2000).get(1)).toBe(2000);
		expect(pacer.nextGrantsAtMs(1000 + intervalMs + 7).get(0)).toBe(1000 + intervalMs + 7);
		pacer.takeDue(2000);
		expect(pacer.nextGrantsAtMs(2000).get(1)).toBeUndefined();
		expect(pacer.intervalMs).toBe(intervalMs);
	});

	it("changes nothing when read", () => {
		const pacer = new Pacer({ maxConcurrency: 2, intervalMs, lastGrants: [[0, 1000]] });
		pacer.enqueue(waiter(0));
		pacer.waitingLines()[0]?.waiters.pop();
		pacer.nextGrantsAtMs(2000);
		expect(pacer.waitingCount).toBe(1);
		expect(shardsOf(pacer.takeDue(1000 + intervalMs))).toEqual([0]);
	});
});

describe("Pacer, places kept for a retry after the client left", () => {
	const retryGraceMs = 10_000;
	/** Shards 0, 1, 2, 3 in one bucket: 0 granted at 0, then 1, 2, 3 waiting. */
	const lineOfFour = (options: { retryGraceMs?: number } = { retryGraceMs }) => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs, ...options });
		const [first, second, third, fourth] = [0, 1, 2, 3].map((shard) => waiter(shard));
		for (const request of [first, second, third, fourth]) if (request) pacer.enqueue(request);
		pacer.takeDue(0);
		return { pacer, second: second as Waiter, third: third as Waiter };
	};

	it("skips a detached place: the next waiting request is granted in its turn, and nothing waits for it", () => {
		const { pacer, second } = lineOfFour();
		expect(pacer.detach(second.ticket, 1000)).toBe(second);
		expect(pacer.detach(second.ticket, 1000)).toBeUndefined();
		expect(pacer.waitingCount).toBe(2);
		expect(pacer.placeCount).toBe(3);
		expect(pacer.nextDueAtMs()).toBe(intervalMs);
		expect(shardsOf(pacer.takeDue(intervalMs))).toEqual([2]);
		expect(shardsOf(pacer.takeDue(2 * intervalMs))).toEqual([3]);
	});

	it("gives the place back to a retry within the grace: granted before later arrivals", () => {
		const { pacer, second } = lineOfFour();
		pacer.detach(second.ticket, 1000);
		pacer.enqueue(waiter(4, 2000));
		const retry = waiter(1, 1000 + retryGraceMs - 1);
		expect(pacer.enqueue(retry)).toEqual({ bucket: 0 });
		expect(pacer.waitingCount).toBe(4);
		expect(pacer.placeCount).toBe(4);
		const order = [1, 2, 3, 4].map((round) => pacer.takeDue(round * intervalMs)[0]?.waiter);
		expect(order).toEqual([retry, expect.objectContaining({ shard: 2 }), expect.anything(), expect.anything()]);
		expect(order.map((w) => w?.shard)).toEqual([1, 2, 3, 4]);
	});

	it("puts a retry whose turn passed meanwhile at the head of the line", () => {
		const { pacer, second } = lineOfFour();
		pacer.detach(second.ticket, 1000);
		expect(shardsOf(pacer.takeDue(intervalMs))).toEqual([2]);
		pacer.enqueue(waiter(1, intervalMs + 100));
		expect(pacer.waitingLines()[0]?.waiters.map((w) => w.shard)).toEqual([1, 3]);
		expect(shardsOf(pacer.takeDue(2 * intervalMs))).toEqual([1]);
	});

	it("drops the place when the grace has passed: a later retry goes to the back", () => {
		const { pacer, second } = lineOfFour();
		pacer.detach(second.ticket, 1000);
		pacer.enqueue(waiter(4, 2000));
		pacer.enqueue(waiter(1, 1000 + retryGraceMs));
		expect(pacer.placeCount).toBe(4);
		const order = [1, 2, 3, 4].flatMap((round) => shardsOf(pacer.takeDue(round * intervalMs)));
		expect(order).toEqual([2, 3, 4, 1]);
	});

	it("removes a request without a shard at once: nothing can take its place back", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs, retryGraceMs });
		const shardless = waiter(null);
		pacer.enqueue(shardless);
		expect(pacer.detach(shardless.ticket, 0)).toBe(shardless);
		expect(pacer.placeCount).toBe(0);
		expect(pacer.nextDueAtMs()).toBeUndefined();
	});

	it("removes the place at once with a grace of 0 (the default), as cancel does", () => {
		const { pacer, second } = lineOfFour({});
		pacer.detach(second.ticket, 1000);
		expect(pacer.placeCount).toBe(2);
		pacer.enqueue(waiter(1, 1001));
		expect([1, 2, 3].flatMap((round) => shardsOf(pacer.takeDue(round * intervalMs)))).toEqual([2, 3, 1]);
	});

	it("keeps detached places detached, in their order, when the number of buckets changes", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs, retryGraceMs });
		const requests = [1, 3, 5, 2].map((shard) => waiter(shard));
		for (const request of requests) pacer.enqueue(request);
		pacer.detach(requests[0]?.ticket ?? "", 0);
		pacer.setMaxConcurrency(2);
		expect(pacer.placeCount).toBe(4);
		expect(pacer.waitingLines().map(({ bucket, waiters }) => [bucket, waiters.map((w) => w.shard)])).toEqual([
			[0, [2]],
			[1, [3, 5]],
		]);
		expect(shardsOf(pacer.takeDue(0))).toEqual([3, 2]);
		const retry = waiter(1, 100);
		pacer.enqueue(retry);
		expect(shardsOf(pacer.takeDue(intervalMs))).toEqual([1]);
	});

	it("counts detached places in placeCount, not in waitingCount, and drain drops them", () => {
		const { pacer, second } = lineOfFour();
		pacer.detach(second.ticket, 1000);
		expect([pacer.waitingCount, pacer.placeCount]).toEqual([2, 3]);
		expect(pacer.drain().map((w) => w.shard)).toEqual([2, 3]);
		expect(pacer.placeCount).toBe(0);
		expect(pacer.nextDueAtMs()).toBeUndefined();
	});

	it("comes back to drop a line of detached places when they expire, granting nothing", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs, retryGraceMs });
		const [first, second, third] = [0, 1, 2].map((shard) => waiter(shard));
		for (const request of [first, second, third]) if (request) pacer.enqueue(request);
		pacer.takeDue(0);
		pacer.detach(second?.ticket ?? "", 1000);
		pacer.detach(third?.ticket ?? "", 1500);
		expect(pacer.waitingCount).toBe(0);
		expect(pacer.nextDueAtMs()).toBeUndefined();
		expect(pacer.nextExpiryAtMs()).toBe(1000 + retryGraceMs);
		expect(pacer.takeDue(1000 + retryGraceMs)).toEqual([]);
		expect(pacer.placeCount).toBe(1);
		expect(pacer.nextExpiryAtMs()).toBe(1500 + retryGraceMs);
		expect(pacer.takeDue(1500 + retryGraceMs)).toEqual([]);
		expect(pacer.placeCount).toBe(0);
		expect(pacer.nextExpiryAtMs()).toBeUndefined();
		expect(pacer.lastGrants().get(0)).toBe(0);
	});

	it("does not list detached places in the status views", () => {
		const pacer = new Pacer({ maxConcurrency: 2, intervalMs, retryGraceMs });
		const requests = [0, 1, 2].map((shard) => waiter(shard));
		for (const request of requests) pacer.enqueue(request);
		pacer.detach(requests[1]?.ticket ?? "", 0);
		expect(
			pacer.waitingLines().map(({ bucket, waiting, waiters }) => [bucket, waiting, waiters.map((w) => w.shard)]),
		).toEqual([[0, 2, [0, 2]]]);
		expect(pacer.nextGrantsAtMs(0).get(1)).toBeUndefined();
		expect(pacer.nextGrantsAtMs(0).get(0)).toBe(0);
	});
});

describe("Pacer, changes to save", () => {
	it("tells whether a place changed since the last take: an arrival, a grant, an expiry", () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs, retryGraceMs: 100 });
		expect(pacer.hasChanges).toBe(false);
		const leaving = waiter(1);
		pacer.enqueue(waiter(0));
		pacer.enqueue(leaving);
		expect(pacer.hasChanges).toBe(true);
		expect(pacer.takeChanges().map((change) => change.key)).toEqual(["shard:0", "shard:1"]);
		expect(pacer.hasChanges).toBe(false);
		pacer.takeDue(0);
		expect(pacer.takeChanges()).toEqual([{ key: "shard:0", place: undefined }]);
		// Leaving keeps the place as saved: nothing to write until it expires.
		pacer.detach(leaving.ticket, 10);
		expect(pacer.hasChanges).toBe(false);
		pacer.takeDue(110);
		expect(pacer.takeChanges()).toEqual([{ key: "shard:1", place: undefined }]);
	});
});

describe("Pacer, a grant handed back (its request never received it)", () => {
	const retryGraceMs = 10_000;
	/** Shards 0, 1, 2 in one bucket after a grant at 0: 3 granted at `intervalMs`, 1 and 2 waiting. */
	const handedOver = () => {
		const pacer = new Pacer({ maxConcurrency: 1, intervalMs, retryGraceMs });
		for (const shard of [0, 3, 1, 2]) pacer.enqueue(waiter(shard));
		pacer.takeDue(0);
		const [grant] = pacer.takeDue(intervalMs);
		pacer.takeChanges();
		return { pacer, grant: grant as Grant };
	};

	it("frees the bucket's slot for the next in line and keeps the shard's place at the head for its retry", () => {
		const { pacer, grant } = handedOver();
		expect(grant.waiter.shard).toBe(3);
		expect(pacer.handBack(grant, intervalMs + 10)).toBe(true);
		expect(pacer.lastGrants().get(0)).toBe(0);
		expect(shardsOf(pacer.takeDue(intervalMs + 10))).toEqual([1]);
		const retry = waiter(3, intervalMs + 20);
		pacer.enqueue(retry);
		expect(pacer.takeDue(2 * intervalMs + 10).map((next) => next.waiter)).toEqual([retry]);
		expect(shardsOf(pacer.takeDue(3 * intervalMs + 10))).toEqual([2]);
	});

	it("moves a retry that already waits to the head of the line", () => {
		const { pacer, grant } = handedOver();
		const retry = waiter(3, intervalMs + 5);
		pacer.enqueue(retry);
		expect(pacer.handBack(grant, intervalMs + 10)).toBe(true);
		expect(pacer.takeDue(intervalMs + 10).map((next) => next.waiter)).toEqual([retry]);
		expect(pacer.takeChanges()).toEqual(expect.arrayContaining([expect.objectContaining({ key: "shard:3" })]));
	});

	it("drops the kept place when no retry comes within the grace", () => {
		const { pacer, grant } = handedOver();
		pacer.handBack(grant, intervalMs + 10);
		expect(pacer.placeCount).toBe(3);
		expect(pacer.nextExpiryAtMs()).toBe(intervalMs + 10 + retryGraceMs);
		pacer.takeDue(intervalMs + 10 + retryGraceMs);
		expect(pacer.placeCount).toBe(1);
	});

	it("takes back only its bucket's latest grant, and a first grant leaves the bucket never granted", () => {
		const { pacer, grant } = handedOver();
		pacer.takeDue(2 * intervalMs);
		expect(pacer.handBack(grant, 2 * intervalMs)).toBe(false);

		const fresh = new Pacer({ maxConcurrency: 1, intervalMs, retryGraceMs });
		fresh.enqueue(waiter(0));
		const [first] = fresh.takeDue(100);
		expect(fresh.handBack(first as Grant, 110)).toBe(true);
		expect(fresh.lastGrants().has(0)).toBe(false);
	});
});

describe("Pacer, buckets sharing a round", () => {
	const roundWindowMs = 5;
	/** Buckets 0..n-1 granted first at the given times (each bucket's first request arriving then), each with one more waiting. */
	function firstGrantedAt(times: number[]): Pacer {
		const pacer = new Pacer({ maxConcurrency: times.length, intervalMs, roundWindowMs });
		times.forEach((atMs, bucket) => {
			pacer.enqueue(waiter(bucket, atMs));
			expect(shardsOf(pacer.takeDue(atMs))).toEqual([bucket]);
		});
		times.forEach((atMs, bucket) => {
			pacer.enqueue(waiter(bucket + times.length, atMs));
		});
		return pacer;
	}

	it("holds a bucket due a few ms before another until that one is due, then grants both, never early", () => {
		const pacer = firstGrantedAt([0, 3]);
		expect(pacer.nextDueAtMs()).toBe(intervalMs + 3);
		expect(pacer.nextGrantsAtMs(0)).toEqual(
			new Map([
				[0, intervalMs + 3],
				[1, intervalMs + 3],
			]),
		);
		expect(pacer.takeDue(intervalMs)).toEqual([]);
		const round = pacer.takeDue(intervalMs + 3);
		expect(shardsOf(round)).toEqual([2, 3]);
		expect(round.map((grant) => grant.grantedAtMs - grant.dueAtMs)).toEqual([3, 0]);
		// Together from then on.
		for (const shard of [4, 5]) pacer.enqueue(waiter(shard));
		expect(pacer.nextDueAtMs()).toBe(2 * intervalMs + 3);
		expect(shardsOf(pacer.takeDue(2 * intervalMs + 3))).toEqual([4, 5]);
	});

	it("keeps buckets further apart than the window in rounds of their own", () => {
		const pacer = firstGrantedAt([0, roundWindowMs + 1]);
		expect(pacer.nextDueAtMs()).toBe(intervalMs);
		expect(shardsOf(pacer.takeDue(intervalMs))).toEqual([2]);
		expect(pacer.nextDueAtMs()).toBe(intervalMs + roundWindowMs + 1);
	});

	it("makes no bucket more than the window late in all: what it was late already counts, chains stop there", () => {
		// Bucket 0 may wait until +5; bucket 1 (+4) joins it; bucket 2 (+8) would make bucket 0 8 ms late.
		const pacer = firstGrantedAt([0, 4, 8]);
		for (const shard of [6, 7, 8]) pacer.enqueue(waiter(shard));
		expect(pacer.nextDueAtMs()).toBe(intervalMs + 4);
		expect(shardsOf(pacer.takeDue(intervalMs + 4))).toEqual([3, 4]);
		expect(shardsOf(pacer.takeDue(intervalMs + 8))).toEqual([5]);
		// Next round: bucket 0, 4 ms late so far, may wait 1 ms more; not the 4 that bucket 2 needs.
		expect(pacer.nextDueAtMs()).toBe(2 * intervalMs + 4);
		expect(shardsOf(pacer.takeDue(2 * intervalMs + 4))).toEqual([6, 7]);
		expect(pacer.nextDueAtMs()).toBe(2 * intervalMs + 8);
	});

	it("counts a late tick as lateness: a bucket granted 4 ms late waits at most 1 ms more", () => {
		const pacer = firstGrantedAt([0, 6]);
		for (const shard of [4, 5]) pacer.enqueue(waiter(shard));
		expect(shardsOf(pacer.takeDue(intervalMs + 4))).toEqual([2]);
		expect(shardsOf(pacer.takeDue(intervalMs + 6))).toEqual([3]);
		// 2 ms apart now, within the window, but bucket 0 has 1 ms of it left.
		expect(pacer.nextDueAtMs()).toBe(2 * intervalMs + 4);
	});

	it("gives a bucket whose line ran empty the whole window again", () => {
		const pacer = new Pacer({ maxConcurrency: 2, intervalMs, roundWindowMs });
		pacer.enqueue(waiter(0));
		pacer.enqueue(waiter(2));
		pacer.takeDue(0);
		expect(shardsOf(pacer.takeDue(intervalMs + 4))).toEqual([2]);
		// Bucket 0's line is empty now: its next run may wait the whole window again.
		pacer.enqueue(waiter(1, intervalMs + 6));
		expect(shardsOf(pacer.takeDue(intervalMs + 6))).toEqual([1]);
		pacer.enqueue(waiter(4));
		pacer.enqueue(waiter(3));
		expect(pacer.nextDueAtMs()).toBe(2 * intervalMs + 6);
	});

	it("never holds a request to an idle bucket for one that is due later, however recently it became free", () => {
		const lastGrants: [number, number][] = [
			[0, 1000],
			[1, 1003],
		];
		const pacer = new Pacer({ maxConcurrency: 2, intervalMs, roundWindowMs, lastGrants });
		pacer.enqueue(waiter(1));
		pacer.enqueue(waiter(0, 1001 + intervalMs));
		expect(shardsOf(pacer.takeDue(1001 + intervalMs))).toEqual([0]);
		expect(pacer.nextDueAtMs()).toBe(1003 + intervalMs);
	});
});
