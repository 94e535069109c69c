/**
 * The bench's Worker (bench/worker/wrangler.toml, never deployed): the queue's
 * own routes, plus `/_bench/*` routes that put thousands of waiters into one
 * queue object from inside workerd (`wrangler dev` carries about 5,000 held HTTP
 * requests on the bench machine).
 */
import app from "../../src/edge/app";
import { queueObjectName } from "../../src/edge/queue-call";
import { GatewayQueue } from "../../src/object/gateway-queue";

interface BenchEnv extends Env {
	BENCH_TIMER: string;
}

export class BenchQueue extends GatewayQueue {
	constructor(ctx: DurableObjectState, env: BenchEnv) {
		super(ctx, env);
		if (env.BENCH_TIMER === "off") this.setTimer = () => () => undefined;
	}

	waitingCount(): number {
		return this.pacer.waitingCount;
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
			if (result.ok) grants.push([result.shard ?? -1, result.bucket, result.grantedAtMs]);
			else refused.push(result.error);
		}
		return { grants, refused };
	}
}

/** One grant as the bench records it: `[shard, bucket, grantedAtMs]`. */
export type GrantTuple = [number, number, number];

async function stubOf(env: BenchEnv, queue: string): Promise<DurableObjectStub<BenchQueue>> {
	const namespace = env.GATEWAY_QUEUE as unknown as DurableObjectNamespace<BenchQueue>;
	return namespace.getByName(await queueObjectName(queue, undefined));
}

/** `POST /_bench/fill?queue=q&from=0&count=500`: see `BenchQueue.fill`. */
async function fill(url: URL, env: BenchEnv): Promise<Response> {
	const queue = url.searchParams.get("queue") ?? "bench";
	const stub = await stubOf(env, queue);
	const from = Number(url.searchParams.get("from") ?? 0);
	return Response.json(await stub.fill(queue, from, Number(url.searchParams.get("count") ?? 1)));
}

export default {
	async fetch(request, env, ctx): Promise<Response> {
		const url = new URL(request.url);
		if (url.pathname === "/_bench/fill") return fill(url, env);
		if (url.pathname === "/_bench/waiting") {
			const stub = await stubOf(env, url.searchParams.get("queue") ?? "bench");
			return Response.json({ waiting: await stub.waitingCount() });
		}
		return app.fetch(request, env, ctx);
	},
} satisfies ExportedHandler<BenchEnv>;
