/** The JSON bodies the service answers with, beside the errors of `./errors.ts`. */
import type { Granted } from "../object/rpc";

/** The reference server's grant message; clients may compare it verbatim. */
export const grantMessage = "You're free to connect now! :)";

export interface GrantReply {
	message: typeof grantMessage;
	/** Absent for a request that named no shard. */
	shard?: number;
	bucket: number;
	waited_ms: number;
	/** Epoch ms. */
	granted_at: number;
}

export function grantReply(grant: Granted): GrantReply {
	return {
		message: grantMessage,
		...(grant.shard !== null && { shard: grant.shard }),
		bucket: grant.bucket,
		waited_ms: grant.waitedMs,
		granted_at: grant.grantedAtMs,
	};
}

export interface HealthReply {
	status: "ok";
}

export const healthReply: HealthReply = { status: "ok" };
