import { checkFunction, checkObject, type QueueClientOptions } from "./options.js";
import { GatewayQueueClient, type OnWaitError } from "./wait-for-identify.js";

export interface QueueIdentifyThrottlerOptions extends QueueClientOptions {
	/** Told about each failed wait before the shard asks again (default: a warning, at most one per `warnIntervalMs`). */
	onError?: OnWaitError;
}

/**
 * An identify throttler for discord.js (`@discordjs/ws` 1 and 2, and so discord.js 14's `Client`):
 * each shard asks the queue before it IDENTIFYs. It has the shape of `@discordjs/ws`'s
 * `IIdentifyThrottler` without importing it, so this module needs no dependency.
 *
 * Build it before the client, so a wrong option throws in your code rather than inside discord.js:
 * `const throttler = new QueueIdentifyThrottler({ url, token })`, then
 * `buildIdentifyThrottler: () => throttler`.
 *
 * `waitForIdentify` rejects only when discord.js aborts `signal` (the shard closed while waiting),
 * and then aborts the HTTP request too. Any other failure is reported and asked again: when a wait
 * rejects otherwise, `@discordjs/ws` reconnects the shard and also sends an IDENTIFY that no grant
 * allowed.
 */
export class QueueIdentifyThrottler {
	readonly #client: GatewayQueueClient;
	readonly #onError: OnWaitError | undefined;

	constructor(options: QueueIdentifyThrottlerOptions) {
		checkObject(options);
		const { onError, ...clientOptions } = options;
		checkFunction("onError", onError);
		this.#client = new GatewayQueueClient(clientOptions);
		this.#onError = onError;
	}

	async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
		await this.#client.waitUntilGranted(shardId, signal, this.#onError);
	}
}
