import { checkFunction, checkObject, type QueueClientOptions } from "./options.js";
import { GatewayQueueClient, type OnWaitError } from "./wait-for-identify.js";

/** What this adapter uses of `@discordeno/gateway` 21's `DiscordenoShard`. */
export interface DiscordenoShardLike {
	id: number;
	identify(): Promise<void>;
	close(code: number, reason: string): Promise<void>;
}

/** What it uses of the gateway manager of `createGatewayManager`. */
export interface DiscordenoGatewayLike {
	shards: Map<number, DiscordenoShardLike>;
	resharding: { shards: Map<number, DiscordenoShardLike> };
}

export interface DiscordenoQueueOptions extends QueueClientOptions {
	/** Told about each failed wait before the shard asks again (default: a warning, at most one per `warnIntervalMs`). */
	onError?: OnWaitError;
}

/**
 * Makes every shard of a Discordeno 21 gateway manager ask the queue before each IDENTIFY, on every
 * path: the first start, `requestIdentify` after a non-resumable Invalid Session, the re-identify
 * after close codes 4003, 4007 and 4009 or a failed resume, and resharding. Call it before
 * `spawnShards()`. Returns `gateway`.
 *
 * Each shard's own `identify()` is gated (the one method that sends IDENTIFY), on every shard that
 * enters `gateway.shards` or `gateway.resharding.shards`. A shard closed while it waits (shutdown,
 * kill) gives up its wait and does not identify; a second identify of a shard takes over the first's wait.
 */
export function withIdentifyQueue<Gateway extends DiscordenoGatewayLike>(
	gateway: Gateway,
	options: DiscordenoQueueOptions,
): Gateway {
	const gate = gateOf(options);
	gateEachShardOf(gateway.resharding.shards, gate);
	let shards = gateEachShardOf(gateway.shards, gate);
	// Resharding replaces the collection: the new one is gated too.
	Object.defineProperty(gateway, "shards", {
		configurable: true,
		enumerable: true,
		get: () => shards,
		set: (replacement: Map<number, DiscordenoShardLike>) => {
			shards = gateEachShardOf(replacement, gate);
		},
	});
	return gateway;
}

/** The same for a shard made by hand (`new DiscordenoShard(...)`, as in a worker process). Returns `shard`. */
export function withIdentifyQueueShard<Shard extends DiscordenoShardLike>(
	shard: Shard,
	options: DiscordenoQueueOptions,
): Shard {
	gateOf(options)(shard);
	return shard;
}

type Gate = (shard: DiscordenoShardLike) => void;

/** Shards gated by any adapter: a second one would make each IDENTIFY wait for two grants. */
const gatedShards = new WeakSet<DiscordenoShardLike>();

function gateOf(options: DiscordenoQueueOptions): Gate {
	checkObject(options);
	const { onError, ...clientOptions } = options;
	checkFunction("onError", onError);
	const client = new GatewayQueueClient(clientOptions);
	return (shard) => {
		if (gatedShards.has(shard)) return;
		gatedShards.add(shard);
		const identify = shard.identify.bind(shard);
		const close = shard.close.bind(shard);
		let waiting: AbortController | undefined;
		shard.identify = async () => {
			waiting?.abort(new Error(`shard ${shard.id} identifies again`));
			const wait = new AbortController();
			waiting = wait;
			try {
				await client.waitUntilGranted(shard.id, wait.signal, onError);
			} catch {
				// Rejects only on abort: the shard closed, or a newer identify took over.
				return;
			} finally {
				if (waiting === wait) waiting = undefined;
			}
			await identify();
		};
		shard.close = (code, reason) => {
			waiting?.abort(new Error(`shard ${shard.id} closed`));
			return close(code, reason);
		};
	};
}

function gateEachShardOf<Shards extends Map<number, DiscordenoShardLike>>(shards: Shards, gate: Gate): Shards {
	for (const shard of shards.values()) gate(shard);
	const set = shards.set.bind(shards);
	shards.set = (shardId, shard) => {
		gate(shard);
		return set(shardId, shard);
	};
	return shards;
}
