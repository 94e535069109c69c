import { describe, expect, it } from "vitest";
import { fetchGatewayBot } from "../../src/discord/api";
import { gatewayBotBody } from "../support/discord-fake";

const apiUrl = "https://discord.test/api/v10";
const answering =
	(response: () => Response): typeof fetch =>
	async () =>
		response();

describe("fetchGatewayBot", () => {
	it("reads max_concurrency and the session start limit, sending the bot token", async () => {
		let seen: Request | undefined;
		const result = await fetchGatewayBot("tok.en", {
			apiUrl,
			fetch: async (input, init) => {
				seen = new Request(input, init);
				return Response.json(gatewayBotBody(16, 420));
			},
		});
		expect(result).toEqual({
			kind: "ok",
			gatewayBot: { maxConcurrency: 16, sessionStartLimit: { total: 1000, remaining: 420, resetAfterMs: 14_400_000 } },
		});
		expect(seen?.url).toBe(`${apiUrl}/gateway/bot`);
		expect(seen?.headers.get("authorization")).toBe("Bot tok.en");
		expect(seen?.headers.get("user-agent")).toMatch(/^DiscordBot \(/);
	});

	it("tells a rejected token apart", async () => {
		const result = await fetchGatewayBot("t", { apiUrl, fetch: answering(() => new Response("{}", { status: 401 })) });
		expect(result).toEqual({ kind: "unauthorized" });
	});

	it("reads how long to wait from a 429's body, or else its Retry-After header", async () => {
		const fromBody = await fetchGatewayBot("t", {
			apiUrl,
			fetch: answering(() => Response.json({ retry_after: 1.25 }, { status: 429, headers: { "retry-after": "2" } })),
		});
		expect(fromBody).toEqual({ kind: "rate_limited", retryAfterMs: 1250 });
		const fromHeader = await fetchGatewayBot("t", {
			apiUrl,
			fetch: answering(() => new Response("Too many", { status: 429, headers: { "retry-after": "7" } })),
		});
		expect(fromHeader).toEqual({ kind: "rate_limited", retryAfterMs: 7000 });
	});

	it.each([
		["a 5xx", () => new Response("bad gateway", { status: 502 }), "HTTP 502"],
		["a body that is not JSON", () => new Response("<html>"), "unexpected /gateway/bot body"],
		["a body without max_concurrency", () => Response.json({ url: "wss://x" }), "unexpected /gateway/bot body"],
		["a max_concurrency of 0", () => Response.json(gatewayBotBody(0)), "unexpected /gateway/bot body"],
	])("reports Discord unavailable on %s", async (_, response, reason) => {
		expect(await fetchGatewayBot("t", { apiUrl, fetch: answering(response) })).toEqual({ kind: "unavailable", reason });
	});

	it("refuses an answer with an absurd max_concurrency rather than keep a bucket for each", async () => {
		const body = { session_start_limit: { total: 1, remaining: 1, reset_after: 1, max_concurrency: 1e9 } };
		const result = await fetchGatewayBot("t", { apiUrl, fetch: async () => Response.json(body) });
		expect(result).toEqual({ kind: "unavailable", reason: "unexpected /gateway/bot body" });
	});

	it("reports Discord unavailable when the request fails", async () => {
		const result = await fetchGatewayBot("t", {
			apiUrl,
			fetch: async () => {
				throw new TypeError("Network connection lost.");
			},
		});
		expect(result).toEqual({ kind: "unavailable", reason: "TypeError" });
	});

	it("answers within its timeout even when the body of the answer never ends and ignores cancellation", async () => {
		const endless = () =>
			new ReadableStream({ pull: () => new Promise(() => {}), cancel: () => new Promise(() => {}) });
		for (const status of [200, 401, 502]) {
			const result = await fetchGatewayBot("t", {
				apiUrl,
				timeoutMs: 20,
				fetch: async () => new Response(endless(), { status }),
			});
			expect(result).toMatchObject({ kind: "unavailable" });
		}
	});

	it("reports Discord unavailable when the body cannot be cancelled, or fetch throws at once", async () => {
		const uncancellable = new ReadableStream({
			cancel: () => {
				throw new Error("cannot cancel");
			},
		});
		const result = await fetchGatewayBot("t", {
			apiUrl,
			fetch: async () => new Response(uncancellable, { status: 503 }),
		});
		expect(result).toEqual({ kind: "unavailable", reason: "Error" });
		const throwing = await fetchGatewayBot("t", {
			apiUrl,
			fetch: () => {
				throw new RangeError("bad init");
			},
		});
		expect(throwing).toEqual({ kind: "unavailable", reason: "RangeError" });
	});

	it("gives up on a Discord that does not answer", async () => {
		const result = await fetchGatewayBot("t", {
			apiUrl,
			timeoutMs: 20,
			fetch: (_input, init) =>
				new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason))),
		});
		expect(result).toEqual({ kind: "unavailable", reason: "TimeoutError" });
	});
});
