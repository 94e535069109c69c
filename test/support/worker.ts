import { env, exports } from "cloudflare:workers";
import { type Mock, vi } from "vitest";
import type { QueueStatusReply } from "../../src/edge/replies";
import type { AcquireRequest, AcquireResult } from "../../src/object/rpc";

export const base = "http://queue.test";

/** A request to the Worker as deployed (`exports.default`), with its real queue objects. */
export const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`${base}${path}`, init));

/** A queue name no other test uses. */
export const uniqueQueue = (prefix = "q") => `${prefix}-${crypto.randomUUID()}`;

/** The queue's status, from `GET /_/queues/{queue}`. */
export const queueStatusOf = async (queue: string, init?: RequestInit) =>
	(await call(`/_/queues/${queue}`, init)).json<QueueStatusReply>();

/** The body of a grant. */
export interface GrantBody {
	message: string;
	shard?: number;
	bucket: number;
	waited_ms: number;
	granted_at: number;
}

/** A header that makes the Worker answer refusals (409, 429, 503, ...) instead of holding the client. */
export const readsRefusals = { "gateway-queue-refusals": "json" };

/** A stand-in for the queue object: what the Worker calls. */
export interface StandIn {
	acquire(request: AcquireRequest): Promise<AcquireResult>;
	cancel?(ticket: string): Promise<boolean>;
	handBack?(ticket: string): Promise<boolean>;
}

/**
 * The Worker's env with `vars` and a stand-in for the queue objects: `GATEWAY_QUEUE.getByName`,
 * a mock (`getByNameOf`), hands out `queue` for every name; `cancel` answers true and `handBack`
 * false unless given.
 */
export function envWithStandIn(queue: StandIn, vars: Partial<Env> | Record<string, string> = {}): Env {
	const stub = { cancel: async () => true, handBack: async () => false, ...queue };
	const getByName = vi.fn((_name: string) => stub);
	return { ...env, ...vars, GATEWAY_QUEUE: { getByName } } as unknown as Env;
}

/** The mock `getByName` of an env from `envWithStandIn`. */
export const getByNameOf = (standInEnv: Env) =>
	standInEnv.GATEWAY_QUEUE.getByName as unknown as Mock<(name: string) => StandIn>;

/** A stand-in that grants every request at once and records what reached it. */
export function grantingStandIn(): StandIn & { reached: AcquireRequest[] } {
	const reached: AcquireRequest[] = [];
	return {
		reached,
		acquire: async (sent) => {
			reached.push(sent);
			return { ok: true, shard: sent.shard, bucket: 0, waitedMs: 0, grantedAtMs: 1 };
		},
	};
}
