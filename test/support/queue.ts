import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, vi } from "vitest";
import type { QueueView, RecentGrant } from "../../src/core/status";
import type { GatewayQueue } from "../../src/object/gateway-queue";
import { placesFlushMs } from "../../src/object/rounds";
import type { AcquireRequest, AcquireResult } from "../../src/object/rpc";
import { QueueStorage, type StoredQueue } from "../../src/object/storage";
import { timerLeadMs } from "../../src/object/wake-ups";

export type QueueStub = DurableObjectStub<GatewayQueue>;

let objects = 0;

/** A fresh queue object per test: storage is shared within a test file. */
export function freshQueue(): QueueStub {
	return env.GATEWAY_QUEUE.getByName(`test-${crypto.randomUUID()}-${objects++}`);
}

/** The interval the tests run with (vitest.config.ts). */
export const intervalMs = Number(env.IDENTIFY_INTERVAL_MS);
/** How long a cancelled shard's place is kept for its retry (wrangler.toml). */
export const retryGraceMs = Number(env.RETRY_GRACE_MS);
/** A bot token of the right form; Discord is faked (`discord-fake.ts`). */
export const botToken = "MTIz.fake-token_for.tests";

export interface FakeClock {
	now: number;
	advance(ms: number): void;
	/** The object's pending timer, in this clock's time; `fireTimer` fires it. */
	timer: FakeTimer | undefined;
}

export interface FakeTimer {
	atMs: number;
	fire: () => Promise<void>;
}

/**
 * Replaces the object's clock and timer (again, after an eviction, by passing the
 * same clock). Time starts a day ahead of the real one, so the alarms the object
 * arms never fire by themselves: tests fire them with `runDurableObjectAlarm`, and
 * the timer with `fireTimer`.
 */
export async function useFakeClock(stub: QueueStub, clock: FakeClock = newFakeClock()): Promise<FakeClock> {
	await runInDurableObject(stub, (queue: GatewayQueue) => {
		queue.clock = () => clock.now;
		queue.setTimer = (fire, delayMs) => {
			const timer = { atMs: clock.now + delayMs, fire };
			clock.timer = timer;
			return () => {
				if (clock.timer === timer) clock.timer = undefined;
			};
		};
	});
	return clock;
}

/** A fresh queue object on a fake clock of its own. */
export async function queueOnFakeClock(): Promise<{ stub: QueueStub; clock: FakeClock }> {
	const stub = freshQueue();
	return { stub, clock: await useFakeClock(stub) };
}

/** Moves the clock to the object's pending timer's due time and fires it, as a timely `setTimeout` would. */
export async function fireTimerOnTime(stub: QueueStub, clock: FakeClock): Promise<boolean> {
	if (!clock.timer) return false;
	clock.now = Math.max(clock.now, clock.timer.atMs + timerLeadMs);
	return fireTimer(stub, clock);
}

/**
 * Lets the object save its waiting line's unsaved changes, as it does `placesFlushMs`
 * after them when no round writes first: the clock moves there and the timer fires.
 */
export async function savePlaces(stub: QueueStub, clock: FakeClock): Promise<void> {
	clock.advance(placesFlushMs);
	await fireTimerOnTime(stub, clock);
}

/** Fires the object's pending timer inside the object, as `setTimeout` would; false when none is pending. */
export async function fireTimer(stub: QueueStub, clock: FakeClock): Promise<boolean> {
	return runInDurableObject(stub, async () => {
		const timer = clock.timer;
		if (!timer) return false;
		clock.timer = undefined;
		await timer.fire();
		return true;
	});
}

function newFakeClock(): FakeClock {
	const clock: FakeClock = {
		now: Date.now() + 86_400_000,
		timer: undefined,
		advance(ms) {
			clock.now += ms;
		},
	};
	return clock;
}

/** Evicts the object from memory, as workerd does when it is idle; returns a new stub on the same clock. */
export async function evictObject(stub: QueueStub, clock: FakeClock): Promise<QueueStub> {
	await evictDurableObject(stub);
	const restarted = env.GATEWAY_QUEUE.get(stub.id);
	await useFakeClock(restarted, clock);
	return restarted;
}

/**
 * Resets the object as a deploy does: every call it was answering fails, and its timer is gone.
 * Returns a new stub (one that saw its object reset is broken) on the same clock.
 */
export async function resetObject(stub: QueueStub, clock: FakeClock): Promise<QueueStub> {
	await runInDurableObject(stub, (_queue, state) => state.abort("deploy")).catch(() => "reset");
	clock.timer = undefined;
	const restarted = env.GATEWAY_QUEUE.get(stub.id);
	await useFakeClock(restarted, clock);
	return restarted;
}

/** A request as the Worker sends it; by default from a client that reads refusals (`refusals: true`). */
export function acquireRequest(shard: number | null, extra: Partial<AcquireRequest> = {}): AcquireRequest {
	return { ticket: crypto.randomUUID(), queue: "test", shard, refusals: true, ...extra };
}

/** A request with `botToken`, from a client that reads refusals. */
export const botRequest = (shard: number | null, extra: Partial<AcquireRequest> = {}): AcquireRequest =>
	acquireRequest(shard, { token: botToken, ...extra });

/** A request with `botToken` from a client that reads no status (twilight's example, curl): any answer would be an IDENTIFY. */
export const statusBlindRequest = (shard: number | null): AcquireRequest => botRequest(shard, { refusals: false });

/** `stub.acquire`, typed as the object's result (RPC's type of a union does not narrow). */
export async function acquire(stub: QueueStub, request: AcquireRequest): Promise<AcquireResult> {
	return stub.acquire(request);
}

/** A shard (a tokenless request from a client that reads refusals) or a request of its own. */
export type Arrival = number | null | AcquireRequest;

/** A request sent and not awaited: its answer, and whether it came. */
export type Held = Tracked<AcquireResult>;

const requestOf = (arrival: Arrival): AcquireRequest =>
	typeof arrival === "object" && arrival !== null ? arrival : acquireRequest(arrival);

/** Sends a request for each arrival, in order and not awaited, and waits until `waiting` requests wait in line. */
export async function arrive<const A extends readonly Arrival[]>(
	stub: QueueStub,
	arrivals: A,
	waiting: number,
): Promise<{ -readonly [K in keyof A]: Held }> {
	const held = arrivals.map((arrival) => track(acquire(stub, requestOf(arrival))));
	await untilWaiting(stub, waiting);
	return held as { -readonly [K in keyof A]: Held };
}

/** Sends a request for each arrival, in order and not awaited, and waits until every one of them waits in line. */
export async function hold<const A extends readonly Arrival[]>(
	stub: QueueStub,
	...arrivals: A
): Promise<{ -readonly [K in keyof A]: Held }> {
	return arrive(stub, arrivals, (await waitingCount(stub)) + arrivals.length);
}

/** Waits until exactly `count` requests wait in the object's line. */
export async function untilWaiting(stub: QueueStub, count: number): Promise<void> {
	await vi.waitFor(async () => expect(await waitingCount(stub)).toBe(count));
}

export async function armedAlarm(stub: QueueStub): Promise<number | null> {
	return runInDurableObject(stub, (_queue, state) => state.storage.getAlarm());
}

export async function waitingCount(stub: QueueStub): Promise<number> {
	return runInDurableObject(stub, (queue: GatewayQueue) => queue.pacer.waitingCount);
}

/** Places held: waiting requests and places kept for a retry. */
export async function placeCount(stub: QueueStub): Promise<number> {
	return runInDurableObject(stub, (queue: GatewayQueue) => queue.pacer.placeCount);
}

/** The object's max_concurrency now, as its status shows it. */
export async function maxConcurrencyOf(stub: QueueStub): Promise<number> {
	return (await statusOf(stub)).maxConcurrency;
}

/** Where the object's max_concurrency comes from, as its status shows it. */
export async function concurrencySourceOf(stub: QueueStub): Promise<QueueView["concurrencySource"]> {
	return (await statusOf(stub)).concurrencySource;
}

/** `stub.status`, typed as the object's result. */
export async function statusOf(stub: QueueStub, queue = "test"): Promise<QueueView> {
	return stub.status(queue);
}

/** A promise, and whether it has settled, without awaiting it. */
export type Tracked<T> = Promise<T> & { settled(): boolean };

/** Tracks whether a promise has settled, without awaiting it. */
export function track<T>(promise: Promise<T>): Tracked<T> {
	let settled = false;
	const tracked = promise.finally(() => {
		settled = true;
	});
	return Object.assign(tracked, { settled: () => settled });
}

/** What the object has persisted, read back as the object reads it at start. */
export async function storedOf(stub: QueueStub): Promise<StoredQueue> {
	return runInDurableObject(stub, (_queue, state) => storageOf(state).load());
}

/** Every grant the object's history holds, oldest first. */
export async function grantHistoryOf(stub: QueueStub): Promise<RecentGrant[]> {
	return runInDurableObject(stub, (_queue, state) => storageOf(state).recentGrants(0, Number.MAX_SAFE_INTEGER));
}

/** The shards of the waiting line the object has saved, in line order. */
export async function savedPlacesOf(stub: QueueStub): Promise<(number | null)[]> {
	return runInDurableObject(stub, (_queue, state) =>
		storageOf(state)
			.places()
			.sort((a, b) => a.order - b.order)
			.map((place) => place.waiter.shard),
	);
}

const storageOf = (state: DurableObjectState) =>
	new QueueStorage(state.storage, (error) => {
		throw error;
	});

/** The budget the object has persisted. */
export async function storedBudgetOf(stub: QueueStub): Promise<StoredQueue["budget"]> {
	return (await storedOf(stub)).budget;
}
