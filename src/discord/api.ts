import * as z from "zod/mini";
import type { GatewayBotResult } from "../core/gateway-bot";

const count = () => z.int().check(z.nonnegative());

const gatewayBotSchema = z.object({
	session_start_limit: z.object({
		total: count(),
		remaining: count(),
		reset_after: z.number().check(z.nonnegative()),
		// Bounded: one entry per bucket is kept, whatever the answer says.
		max_concurrency: z.int().check(z.positive(), z.maximum(65_536)),
	}),
});

const rateLimitBodySchema = z.object({ retry_after: z.number().check(z.nonnegative()) });

const defaultTimeoutMs = 10_000;
/** When Discord says 429 but not for how long. */
const defaultRetryAfterMs = 5_000;

export interface DiscordClientOptions {
	apiUrl: string;
	fetch?: typeof fetch;
	/** Gives up on an answer after this long (default 10 s). */
	timeoutMs?: number;
}

/**
 * Reads `/gateway/bot`; every outcome is a value: nothing throws, and nothing
 * takes longer than the timeout, whatever the answer's body does.
 */
export async function fetchGatewayBot(token: string, options: DiscordClientOptions): Promise<GatewayBotResult> {
	// A timer of our own, cleared when done: a pending one keeps the object from being evicted.
	const deadline = new AbortController();
	let timer: ReturnType<typeof setTimeout> | undefined;
	const timedOut = new Promise<GatewayBotResult>((resolve) => {
		timer = setTimeout(() => {
			deadline.abort(new DOMException("timed out", "TimeoutError"));
			resolve({ kind: "unavailable", reason: "TimeoutError" });
		}, options.timeoutMs ?? defaultTimeoutMs);
	});
	try {
		const read = readGatewayBot(token, options, deadline.signal).catch(
			(error: unknown): GatewayBotResult => ({ kind: "unavailable", reason: errorName(error) }),
		);
		return await Promise.race([read, timedOut]);
	} finally {
		if (timer !== undefined) clearTimeout(timer);
	}
}

const errorName = (error: unknown): string => (error instanceof Error ? error.name : "fetch failed");

async function readGatewayBot(
	token: string,
	{ apiUrl, fetch: fetchImpl = fetch }: DiscordClientOptions,
	signal: AbortSignal,
): Promise<GatewayBotResult> {
	let response: Response;
	try {
		response = await fetchImpl(`${apiUrl}/gateway/bot`, {
			headers: {
				authorization: `Bot ${token}`,
				"user-agent": "DiscordBot (gateway-queue, 0.1.0)",
			},
			signal,
		});
	} catch (error) {
		return { kind: "unavailable", reason: errorName(error) };
	}
	if (response.status === 401) {
		await response.body?.cancel();
		return { kind: "unauthorized" };
	}
	if (response.status === 429) {
		return { kind: "rate_limited", retryAfterMs: await retryAfterMsOf(response) };
	}
	if (!response.ok) {
		await response.body?.cancel();
		return { kind: "unavailable", reason: `HTTP ${response.status}` };
	}
	const parsed = gatewayBotSchema.safeParse(await response.json().catch(() => undefined));
	if (!parsed.success) return { kind: "unavailable", reason: "unexpected /gateway/bot body" };
	const limit = parsed.data.session_start_limit;
	return {
		kind: "ok",
		gatewayBot: {
			maxConcurrency: limit.max_concurrency,
			sessionStartLimit: { total: limit.total, remaining: limit.remaining, resetAfterMs: limit.reset_after },
		},
	};
}

/** Discord sends `Retry-After` in seconds, and `retry_after` (seconds, fractional) in the body. */
async function retryAfterMsOf(response: Response): Promise<number> {
	const body = rateLimitBodySchema.safeParse(await response.json().catch(() => undefined));
	if (body.success) return Math.ceil(body.data.retry_after * 1000);
	const header = Number(response.headers.get("retry-after"));
	if (response.headers.has("retry-after") && Number.isFinite(header) && header >= 0) return Math.ceil(header * 1000);
	return defaultRetryAfterMs;
}
