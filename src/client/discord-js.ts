import { type WaitForIdentifyOptions, waitForIdentify } from "./wait-for-identify.js";

export type QueueIdentifyThrottlerOptions = Omit<WaitForIdentifyOptions, "signal">;

/**
 * An identify throttler for discord.js (`@discordjs/ws`): each shard asks the
 * queue before it IDENTIFYs. It has the shape of `@discordjs/ws`'s
 * `IIdentifyThrottler` without importing it, so this module needs no
 * dependency; plug it in with
 * `buildIdentifyThrottler: () => new QueueIdentifyThrottler({ url, token })`.
 *
 * When the shard closes while waiting, discord.js aborts `signal`: the HTTP
 * request is aborted and the promise rejects, which discord.js expects.
 */
export class QueueIdentifyThrottler {
	readonly options: QueueIdentifyThrottlerOptions;

	constructor(options: QueueIdentifyThrottlerOptions) {
		this.options = options;
	}

	async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
		await waitForIdentify(shardId, { ...this.options, signal });
	}
}
