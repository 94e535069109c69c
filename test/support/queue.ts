import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { type AcquireRequest, type AcquireResult, type GatewayQueue, timerLeadMs } from "../../src/object/gateway-queue";

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

/** Moves the clock to the object's pending timer's due time and fires it, as a timely `setTimeout` would. */
export async function fireTimerOnTime(stub: QueueStub, clock: FakeClock): Promise<boolean> {
	if (!clock.timer) return false;
	clock.now = Math.max(clock.now, clock.timer.atMs + timerLeadMs);
	return fireTimer(stub, clock);
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

/** A request as the Worker sends it; by default from a client that reads refusals (`refusals: true`). */
export function acquireRequest(shard: number | null, extra: Partial<AcquireRequest> = {}): AcquireRequest {
	return { ticket: crypto.randomUUID(), queue: "test", shard, refusals: true, ...extra };
}

/** `stub.acquire`, typed as the object's result (RPC's type of a union does not narrow). */
export async function acquire(stub: QueueStub, request: AcquireRequest): Promise<AcquireResult> {
	return stub.acquire(request);
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

/** Tracks whether a promise has settled, without awaiting it. */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
	let settled = false;
	const tracked = promise.finally(() => {
		settled = true;
	});
	return { promise: tracked, settled: () => settled };
}

/** Everything a read must leave alone: the tables and their rows, the stored keys and values, the alarm, the line. */
export async function stateOf(stub: QueueStub) {
	const storage = await runInDurableObject(stub, async (_queue, state) => ({
		tables: state.storage.sql.exec("SELECT name FROM sqlite_master ORDER BY name").toArray(),
		grants: state.storage.sql.exec("SELECT * FROM bucket_grant ORDER BY bucket").toArray(),
		history: state.storage.sql.exec("SELECT * FROM grant_history ORDER BY rowid").toArray(),
		places: state.storage.sql.exec("SELECT * FROM waiting_place ORDER BY place_key").toArray(),
		keys: [...state.storage.kv.list()],
	}));
	return { storage, alarm: await armedAlarm(stub), waiting: await waitingCount(stub) };
}
