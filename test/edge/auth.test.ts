import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/config";
import app from "../../src/edge/app";
import { botTokenFor, presentedBotToken, presentedSecret, secretChallenge } from "../../src/edge/auth";
import { errorOf } from "../support/api-error";
import { logLinesOf, spyOnLogLines } from "../support/console";
import { envWithStandIn, getByNameOf, grantingStandIn } from "../support/worker";

const secret = "s3cret-0123456789-abcdef";
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;
const request = (headers: Record<string, string> = {}, path = "/q?shard=1", method = "GET") =>
	new Request(`http://queue.test${path}`, { headers, method });

const readCredentials = (request: Request) => ({
	secret: presentedSecret(request),
	botToken: presentedBotToken(request),
});

/** The `ApiError` that reading the credentials of `headers` throws. */
const refusalOf = (headers: Record<string, string>) => errorOf(() => readCredentials(request(headers)));

describe("readCredentials", () => {
	it.each([
		[{}, undefined, undefined],
		[{ authorization: "Bot abc.def" }, undefined, "abc.def"],
		[{ "x-bot-token": "abc.def" }, undefined, "abc.def"],
		[{ "x-bot-token": "Bot abc.def" }, undefined, "abc.def"],
		[{ authorization: `Bearer ${secret}` }, secret, undefined],
		[{ authorization: `bearer  ${secret} ` }, secret, undefined],
		[{ authorization: `Bearer ${secret}`, "x-bot-token": "abc.def" }, secret, "abc.def"],
		[{ authorization: basic("", secret) }, secret, undefined],
		[{ authorization: basic("abc.def", secret) }, secret, "abc.def"],
		[{ authorization: basic("", secret), "x-bot-token": "abc.def" }, secret, "abc.def"],
		[{ authorization: basic("", "pass:with:colons") }, "pass:with:colons", undefined],
		// Unreadable Basic and Bearer carry nothing.
		[{ authorization: "Basic !!!" }, undefined, undefined],
		[{ authorization: "Bearer two words" }, undefined, undefined],
	])("%j → secret %j, bot token %j", (headers, expectedSecret, expectedToken) => {
		expect(readCredentials(request(headers))).toEqual({ secret: expectedSecret, botToken: expectedToken });
	});

	it.each([
		{ authorization: "Bot" },
		{ authorization: "Bot a/b" },
		{ "x-bot-token": "" },
		{ "x-bot-token": "Bot" },
		{ "x-bot-token": "a b" },
		{ "x-bot-token": "a".repeat(257) },
		{ authorization: basic("bad/user", secret) },
		{ authorization: "Bot abc.def", "x-bot-token": "abc.def" },
		{ authorization: basic("abc.def", secret), "x-bot-token": "ghi.jkl" },
	])("refuses %j with invalid_token, without echoing it", (headers) => {
		const error = refusalOf(headers);
		expect(error.code).toBe("invalid_token");
		expect(error.message).not.toMatch(/abc\.def|ghi\.jkl|bad\/user|a b|aaaa/);
	});

	it.each([
		{ authorization: "abc.def" },
		{ authorization: "Digest x=1" },
		{ authorization: "Bottle abc.def" },
		{ authorization: "Token abc.def" },
	])(
		"refuses %j, an Authorization in no scheme it knows, with invalid_authorization, without echoing it",
		(headers) => {
			const error = refusalOf(headers);
			expect(error.code).toBe("invalid_authorization");
			expect(error.status).toBe(400);
			expect(error.message).not.toMatch(/abc|Digest|Bottle|Token/);
		},
	);

	it("falls back to DISCORD_TOKEN in botTokenFor, and prefers the request's own token", async () => {
		const config = parseConfig({ DISCORD_TOKEN: "from.secret" });
		const open = { secretRequired: false };
		expect(await botTokenFor(request(), config, open)).toBe("from.secret");
		expect(await botTokenFor(request({ "x-bot-token": "own.token" }), config, open)).toBe("own.token");
		expect(await botTokenFor(request(), parseConfig({}), open)).toBeUndefined();
	});
});

/** The app with a stand-in queue object that records what reaches it. */
function appWith(vars: Record<string, string>) {
	const queue = grantingStandIn();
	const testEnv = envWithStandIn(queue, vars);
	return { fetch: (req: Request) => app.fetch(req, testEnv), reached: queue.reached, getByName: getByNameOf(testEnv) };
}

describe("with QUEUE_SECRET set", () => {
	it.each([
		["Bearer", { authorization: `Bearer ${secret}` }, undefined],
		["Bearer and X-Bot-Token", { authorization: `Bearer ${secret}`, "x-bot-token": "abc.def" }, "abc.def"],
		["Basic with the secret as password", { authorization: basic("", secret) }, undefined],
		["Basic with the bot token as user", { authorization: basic("abc.def", secret) }, "abc.def"],
	])("lets %s through, with its bot token", async (_name, headers, token) => {
		const queue = appWith({ QUEUE_SECRET: secret });
		const response = await queue.fetch(request(headers));
		expect(response.status).toBe(200);
		expect(queue.reached.map((sent) => sent.token)).toEqual([token]);
	});

	it.each([
		["no credentials", {}],
		["a bot token only", { authorization: "Bot abc.def" }],
		["X-Bot-Token only", { "x-bot-token": "abc.def" }],
		["a wrong secret", { authorization: "Bearer s3cret-0123456789-abcdeF" }],
		["a prefix of the secret", { authorization: `Bearer ${secret.slice(0, -1)}` }],
		["the secret and more", { authorization: `Bearer ${secret}x` }],
		["an empty Bearer", { authorization: "Bearer " }],
		["the secret as Basic user name", { authorization: basic(secret, "") }],
		["the secret in another scheme", { authorization: `Token ${secret}` }],
		["the secret in X-Bot-Token", { "x-bot-token": secret }],
	])("answers 401 unauthorized to %s, before any queue object is touched", async (_name, headers) => {
		const queue = appWith({ QUEUE_SECRET: secret });
		const response = await queue.fetch(request(headers));
		expect(response.status).toBe(401);
		expect(response.headers.get("www-authenticate")).toBe(secretChallenge);
		expect(response.headers.get("content-type")).toBe("application/json");
		const text = await response.text();
		expect(JSON.parse(text)).toMatchObject({ error: "unauthorized" });
		expect(text).not.toContain(secret);
		expect(text).not.toContain("abc.def");
		expect(queue.getByName).not.toHaveBeenCalled();
	});

	it("keeps a bot's queue reachable only with its token: the secret alone reaches another object", async () => {
		const queue = appWith({ QUEUE_SECRET: secret });
		const bearer = { authorization: `Bearer ${secret}` };
		await queue.fetch(request({ ...bearer, "x-bot-token": "bot.one" }));
		await queue.fetch(request(bearer));
		await queue.fetch(request({ ...bearer, "x-bot-token": "bot.two" }));
		await queue.fetch(request({ authorization: basic("bot.one", secret) }));
		const names = queue.getByName.mock.calls.map((call) => call[0]);
		expect(new Set(names).size).toBe(3);
		expect(names[3]).toBe(names[0]);
		expect(names.join()).not.toContain("bot.one");
	});

	it("guards the reserved routes too, except /_/health and the dashboard page, which hold no queue data", async () => {
		const queue = appWith({ QUEUE_SECRET: secret });
		expect((await queue.fetch(request({}, "/_/health"))).status).toBe(200);
		expect((await queue.fetch(request({}, "/_/health", "HEAD"))).status).toBe(200);
		const page = await queue.fetch(request({}, "/_/dashboard/q"));
		expect(page.status).toBe(200);
		expect(await page.text()).not.toContain(secret);
		expect(queue.getByName).not.toHaveBeenCalled();
		for (const [path, method] of [
			["/_/health", "POST"],
			["/_/health/", "GET"],
			["/_/queues/q", "GET"],
			["/_/dashboard/q", "POST"],
			["/_/anything", "DELETE"],
		] as const) {
			const response = await queue.fetch(request({}, path, method));
			expect(response.status, `${method} ${path}`).toBe(401);
		}
		expect((await queue.fetch(request({ authorization: `Bearer ${secret}` }, "/_/anything"))).status).toBe(404);
	});

	it("checks the bot token's shape after the secret, so a stranger learns nothing of either", async () => {
		const queue = appWith({ QUEUE_SECRET: secret });
		const stranger = await queue.fetch(request({ authorization: "Bearer wrong", "x-bot-token": "bad token" }));
		expect(await stranger.json()).toMatchObject({ error: "unauthorized" });
		const insider = await queue.fetch(request({ authorization: `Bearer ${secret}`, "x-bot-token": "bad token" }));
		expect(await insider.json()).toMatchObject({ error: "invalid_token" });
	});

	it("answers 500 misconfigured, not an open queue, when the secret is set but too weak", async () => {
		const queue = appWith({ QUEUE_SECRET: "short" });
		const response = await queue.fetch(request({ authorization: "Bearer short" }));
		expect(response.status).toBe(500);
		const text = await response.text();
		expect(JSON.parse(text)).toMatchObject({ error: "misconfigured" });
		expect(text).toContain("QUEUE_SECRET");
		expect(text).not.toContain('short"');
		expect(queue.getByName).not.toHaveBeenCalled();
	});
});

describe("without QUEUE_SECRET", () => {
	it("serves requests with or without credentials, ignoring a secret nobody asked for", async () => {
		const queue = appWith({});
		for (const headers of [{}, { authorization: "Bearer anything" }, { authorization: basic("", "x") }]) {
			expect((await queue.fetch(request(headers))).status).toBe(200);
		}
		const withToken = await queue.fetch(request({ authorization: basic("abc.def", "") }));
		expect(withToken.status).toBe(200);
		expect(queue.reached.map((sent) => sent.token)).toEqual([undefined, undefined, undefined, "abc.def"]);
	});

	it("logs one warning per isolate when a request reaches a queue with neither secret nor token", async () => {
		const lines = spyOnLogLines();
		const openQueueWarnings = () => logLinesOf(lines).filter((line) => line.event === "open_queue");
		const queue = appWith({});
		await queue.fetch(request({ "x-bot-token": "abc.def" }));
		expect(openQueueWarnings()).toEqual([]);
		await queue.fetch(request());
		await queue.fetch(request());
		const warnings = openQueueWarnings();
		expect(warnings).toEqual([expect.objectContaining({ event: "open_queue", level: "warn" })]);
		expect(warnings[0]?.message).toContain("tokenless queues");
	});

	it("names the DISCORD_TOKEN bot's queues in that warning when that secret is set", async () => {
		const lines = spyOnLogLines();
		await appWith({ DISCORD_TOKEN: "fallback.token" }).fetch(request());
		const text = lines.mock.calls.map(([line]) => String(line)).join("\n");
		expect(text).toContain("DISCORD_TOKEN bot's queues");
		expect(text).not.toContain("fallback.token");
	});

	it("does not warn when QUEUE_SECRET is set", async () => {
		const lines = spyOnLogLines();
		await appWith({ QUEUE_SECRET: secret, IDENTIFY_INTERVAL_MS: "5500" }).fetch(
			request({ authorization: `Bearer ${secret}` }),
		);
		expect(lines).not.toHaveBeenCalled();
	});
});
