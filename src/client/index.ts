/** `gateway-queue/client`: ask a gateway-queue deployment before a shard IDENTIFYs. */
export { QueueIdentifyThrottler, type QueueIdentifyThrottlerOptions } from "./discord-js.js";
export {
	type IdentifyGrant,
	IdentifyQueueError,
	type RetryInfo,
	type WaitForIdentifyOptions,
	waitForIdentify,
} from "./wait-for-identify.js";
