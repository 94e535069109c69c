/** What Discord's `GET /gateway/bot` tells about a bot, as the queue uses it (read by `src/discord/api.ts`). */
export interface GatewayBot {
	maxConcurrency: number;
	sessionStartLimit: {
		total: number;
		remaining: number;
		resetAfterMs: number;
	};
}

export type GatewayBotResult =
	| { kind: "ok"; gatewayBot: GatewayBot }
	/** Discord rejected the token. */
	| { kind: "unauthorized" }
	| { kind: "rate_limited"; retryAfterMs: number }
	/** Network error, timeout, 5xx, or an answer we could not read. */
	| { kind: "unavailable"; reason: string };
