/** `gateway-queue-client`: ask a gateway-queue deployment before a shard IDENTIFYs. */
export { QueueIdentifyThrottler, type QueueIdentifyThrottlerOptions } from "./discord-js.js";
export {
	type DiscordenoGatewayLike,
	type DiscordenoQueueOptions,
	type DiscordenoShardLike,
	withIdentifyQueue,
	withIdentifyQueueShard,
} from "./discordeno.js";
export type { QueueClientOptions, RetryInfo } from "./options.js";
export {
	GatewayQueueClient,
	grantMessage,
	type IdentifyGrant,
	IdentifyQueueError,
	type OnWaitError,
	type RetryAfterErrorInfo,
	type WaitForIdentifyOptions,
	waitForIdentify,
} from "./wait-for-identify.js";
