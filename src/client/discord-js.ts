import {
	abortableDelay,
	defaults,
	IdentifyQueueError,
	type WaitForIdentifyOptions,
	waitForIdentify,
} from "./wait-for-identify.js";

export interface QueueIdentifyThrottlerOptions extends Omit<WaitForIdentifyOptions, "signal"> {
	/** Told about each refusal before the shard asks again (default: `console.warn`). */
	onRefusal?: (error: IdentifyQueueError, shardId: number) => void;
}

/**
 * An identify throttler for discord.js (`@discordjs/ws`): each shard asks the
 * queue before it IDENTIFYs. It has the shape of `@discordjs/ws`'s
 * `IIdentifyThrottler` without importing it, so this module needs no
 * dependency; plug it in with
 * `buildIdentifyThrottler: () => new QueueIdentifyThrottler({ url, token })`.
 *
 * It rejects only when discord.js aborts `signal` (the shard closed while
 * waiting), and then aborts the HTTP request too. A refusal (bad token, a newer
 * request for the shard, a long `429`) is reported with `onRefusal` and asked
 * again after the `429`'s `Retry-After`, or else `backoffMaxMs`: when a wait
 * rejects otherwise, `@discordjs/ws` 2 reconnects the shard and also sends an
 * IDENTIFY that no grant allowed.
 */
export class QueueIdentifyThrottler {
	readonly options: QueueIdentifyThrottlerOptions;

	constructor(options: QueueIdentifyThrottlerOptions) {
		this.options = options;
	}

	async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
		const { onRefusal = warn, delay = abortableDelay, ...options } = this.options;
		for (;;) {
			try {
				await waitForIdentify(shardId, { ...options, delay, signal });
				return;
			} catch (error) {
				if (signal.aborted || !(error instanceof IdentifyQueueError)) throw error;
				onRefusal(error, shardId);
				await delay(error.retryAfterMs ?? options.backoffMaxMs ?? defaults.backoffMaxMs, signal);
				signal.throwIfAborted();
			}
		}
	}
}

function warn(error: IdentifyQueueError, shardId: number): void {
	console.warn(`shard ${shardId}: ${error.message}; asking again`);
}
