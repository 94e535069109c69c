import { env } from "cloudflare:workers";
import { type MockInstance, vi } from "vitest";

export interface GatewayBotAnswer {
	status?: number;
	body?: unknown;
	headers?: Record<string, string>;
	/** Throw like a network error instead of answering. */
	fail?: boolean;
	/** Answer only once this settles. */
	after?: Promise<void>;
}

export const gatewayBotUrl = `${env.DISCORD_API_URL}/gateway/bot`;

export function gatewayBotBody(
	maxConcurrency: number,
	remaining = 999,
	{ total = 1000, resetAfterMs = 14_400_000 }: { total?: number; resetAfterMs?: number } = {},
) {
	return {
		url: "wss://gateway.discord.gg",
		shards: 1,
		session_start_limit: { total, remaining, reset_after: resetAfterMs, max_concurrency: maxConcurrency },
	};
}

/** How long after an answer of `smallBot` its daily budget resets. */
export const smallBotResetAfterMs = 3_600_000;

/** Discord's answer for a bot with a daily total of 100 (a reserve of 5 at the default 5%), reset in an hour. */
export const smallBot = (
	maxConcurrency: number,
	remaining: number,
	options: { total?: number; resetAfterMs?: number } = {},
): GatewayBotAnswer => ({
	body: gatewayBotBody(maxConcurrency, remaining, { total: 100, resetAfterMs: smallBotResetAfterMs, ...options }),
});

/**
 * Fakes Discord's `/gateway/bot` by replacing the global `fetch` (the queue
 * objects run in the test's isolate). Answers come from `answers` in turn, the
 * last one repeating.
 */
export function fakeDiscord(...answers: GatewayBotAnswer[]): MockInstance<typeof fetch> {
	let call = 0;
	return vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
		const url = input instanceof Request ? input.url : String(input);
		if (url !== gatewayBotUrl) throw new Error(`unexpected fetch of ${url}`);
		const answer = answers[Math.min(call++, answers.length - 1)] ?? {};
		await answer.after;
		if (answer.fail) throw new TypeError("Network connection lost.");
		return Response.json(answer.body ?? {}, { status: answer.status ?? 200, headers: answer.headers ?? {} });
	});
}

export function authorizationOf(fetchMock: MockInstance<typeof fetch>, call = 0): string | null {
	const init = fetchMock.mock.calls[call]?.[1];
	return new Headers(init?.headers).get("authorization");
}
