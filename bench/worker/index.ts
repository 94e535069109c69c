/**
 * The bench's Worker (bench/worker/wrangler.toml, never deployed): the queue's
 * own routes, plus `/_bench/*` routes that put thousands of waiters into one
 * queue object from inside workerd (`wrangler dev` carries about 5,000 held HTTP
 * requests on the bench machine), probe the floor of a grant's latency and CPU, and
 * (with `BENCH_ARRIVALS=on`) read the order requests reached the object in.
 */
import app from "../../src/edge/app";
import { queueObjectName } from "../../src/edge/queue-call";
import { GatewayQueue } from "../../src/object/gateway-queue";
import type { AcquireRequest, AcquireResult } from "../../src/object/rpc";

interface BenchEnv extends Env {
	BENCH_TIMER: string;
	BENCH_ARRIVALS?: string;
	BENCH_COUNTERS?: string;
}

/** What one queue object did (`BENCH_COUNTERS=on`): its wake-ups and storage calls. */
export interface Counters {
	acquires: number;
	timerFires: number;
	alarms: number;
	setAlarms: number;
	deleteAlarms: number;
	transactions: number;
}

/**
 * One call of `acquire` as the object saw it, in call order: `[shard, ticket,
 * arrived at, how it ended, at]` (the outcome "waiting" and null while it waits).
 */
export type Arrival = [number | null, string, number, string, number | null];

export class BenchQueue extends GatewayQueue {
	readonly #arrivals: Arrival[] | undefined;
	readonly #counters: Counters | undefined;
	/** `heldUntil`'s rounds by the instant they answer at. */
	readonly #rounds = new Map<number, Promise<number>>();

	constructor(ctx: DurableObjectState, env: BenchEnv) {
		super(ctx, env);
		if (env.BENCH_TIMER === "off") this.setTimer = () => () => undefined;
		if (env.BENCH_ARRIVALS === "on") this.#arrivals = [];
		if (env.BENCH_COUNTERS === "on") this.#counters = this.#count(ctx.storage);
		ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL)");
	}

	/** Counts the object's wake-ups and storage calls, by wrapping them. */
	#count(storage: DurableObjectStorage): Counters {
		const counters: Counters = {
			acquires: 0,
			timerFires: 0,
			alarms: 0,
			setAlarms: 0,
			deleteAlarms: 0,
			transactions: 0,
		};
		const setTimer = this.setTimer;
		this.setTimer = (callback, delayMs) =>
			setTimer(() => {
				counters.timerFires++;
				return callback();
			}, delayMs);
		const { setAlarm, deleteAlarm, transactionSync } = storage;
		storage.setAlarm = (...args) => {
			counters.setAlarms++;
			return setAlarm.apply(storage, args);
		};
		storage.deleteAlarm = (...args) => {
			counters.deleteAlarms++;
			return deleteAlarm.apply(storage, args);
		};
		storage.transactionSync = <T>(closure: () => T): T => {
			counters.transactions++;
			return transactionSync.call(storage, closure) as T;
		};
		return counters;
	}

	override async alarm(): Promise<void> {
		if (this.#counters) this.#counters.alarms++;
		await super.alarm();
	}

	counters(): Counters | null {
		return this.#counters ?? null;
	}

	override acquire(request: AcquireRequest): Promise<AcquireResult> {
		if (this.#counters) this.#counters.acquires++;
		const answer = super.acquire(request);
		if (this.#arrivals) {
			const arrival: Arrival = [request.shard, request.ticket, Date.now(), "waiting", null];
			this.#arrivals.push(arrival);
			answer.then((result) => {
				arrival[3] = result.ok ? "granted" : result.error;
				arrival[4] = result.ok ? result.grantedAtMs : Date.now();
			});
		}
		return answer;
	}

	arrivals(): Arrival[] {
		return this.#arrivals ?? [];
	}

	waitingCount(): number {
		return this.pacer.waitingCount;
	}

	/** The floor of a grant: a call into the object that answers once one row is committed (the output gate). */
	floor(): number {
		const nowMs = Date.now();
		this.ctx.storage.transactionSync(() =>
			this.ctx.storage.sql.exec("INSERT OR REPLACE INTO bench_floor (id, at_ms) VALUES (1, ?)", nowMs),
		);
		return nowMs;
	}

	/** `rounds` wake-ups of the object, `delayMs` apart, each from a timer and committing one row: what a round costs the runtime. */
	async wakeUps(rounds: number, delayMs: number): Promise<number> {
		for (let round = 0; round < rounds; round++) {
			await new Promise((resolve) => setTimeout(resolve, delayMs));
			this.floor();
		}
		return rounds;
	}

	/**
	 * The floor of a round of grants: the calls answered at `atMs` (an instant of
	 * the epoch) share one timer and one committed row, as an ideal queue's round would.
	 */
	heldUntil(atMs: number): Promise<number> {
		let round = this.#rounds.get(atMs);
		if (!round) {
			round = new Promise<number>((resolve) =>
				setTimeout(() => {
					this.#rounds.delete(atMs);
					resolve(this.floor());
				}, atMs - Date.now()),
			);
			this.#rounds.set(atMs, round);
		}
		return round;
	}

	/** A call into the object that writes nothing. */
	ping(): number {
		return Date.now();
	}

	/**
	 * Shards from..from+count-1 wait in this queue, in that order, through the same
	 * `acquire` the Worker calls; answers when all are granted. Waiters are made
	 * here rather than by one RPC call each: locally workerd spends about 100 KB
	 * and much CPU per held RPC call, which would measure the local transport.
	 */
	async fill(queue: string, from: number, count: number): Promise<{ grants: GrantTuple[]; refused: string[] }> {
		const results = await Promise.all(
			Array.from({ length: count }, (_, index) =>
				this.acquire({ ticket: crypto.randomUUID(), queue, shard: from + index, refusals: true }),
			),
		);
		const grants: GrantTuple[] = [];
		const refused: string[] = [];
		for (const result of results) {
			if (result.ok) grants.push([result.shard ?? -1, result.bucket, result.grantedAtMs, result.waitedMs]);
			else refused.push(result.error);
		}
		return { grants, refused };
	}
}

/** One grant as the bench records it: `[shard, bucket, grantedAtMs, waitedMs]`. */
export type GrantTuple = [number, number, number, number];

async function stubOf(env: BenchEnv, queue: string): Promise<DurableObjectStub<BenchQueue>> {
	const namespace = env.GATEWAY_QUEUE as unknown as DurableObjectNamespace<BenchQueue>;
	return namespace.getByName(await queueObjectName(queue, undefined));
}

/** `GET /_bench/fill?queue=q&from=0&count=500`: see `BenchQueue.fill`. */
async function fill(url: URL, env: BenchEnv): Promise<Response> {
	const queue = url.searchParams.get("queue") ?? "bench";
	const stub = await stubOf(env, queue);
	const from = Number(url.searchParams.get("from") ?? 0);
	return Response.json(await stub.fill(queue, from, Number(url.searchParams.get("count") ?? 1)));
}

export default {
	async fetch(request, env, ctx): Promise<Response> {
		const url = new URL(request.url);
		if (!url.pathname.startsWith("/_bench/")) return app.fetch(request, env, ctx);
		const queue = url.searchParams.get("queue") ?? "bench";
		switch (url.pathname) {
			case "/_bench/fill":
				return fill(url, env);
			case "/_bench/waiting":
				return Response.json({ waiting: await (await stubOf(env, queue)).waitingCount() });
			case "/_bench/floor":
				return Response.json({ at: await (await stubOf(env, queue)).floor() });
			case "/_bench/held-until":
				return Response.json({
					at: await (await stubOf(env, queue)).heldUntil(Number(url.searchParams.get("at") ?? 0)),
				});
			case "/_bench/wake-ups":
				return Response.json({
					rounds: await (await stubOf(env, queue)).wakeUps(
						Number(url.searchParams.get("rounds") ?? 1),
						Number(url.searchParams.get("ms") ?? 50),
					),
				});
			case "/_bench/plain":
				return Response.json({ status: "ok" });
			case "/_bench/rpc":
				return Response.json({ at: await (await stubOf(env, queue)).ping() });
			case "/_bench/counters":
				return Response.json(await (await stubOf(env, queue)).counters());
			case "/_bench/arrivals":
				return Response.json(await (await stubOf(env, queue)).arrivals());
			default:
				return new Response("no such bench route", { status: 404 });
		}
	},
} satisfies ExportedHandler<BenchEnv>;
