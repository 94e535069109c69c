import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import app from "../../src/edge/app";
import { queueObjectName } from "../../src/edge/queue-call";
import { captureConsole } from "../support/console";
import { fakeDiscord, type GatewayBotAnswer, gatewayBotBody } from "../support/discord-fake";
import { storageDump } from "../support/storage-dump";
import { uniqueQueue as anyQueue, call } from "../support/worker";

const uniqueToken = () => `leak-${crypto.randomUUID()}.check_token`;
const uniqueQueue = () => anyQueue("s");
const secret = `queue-secret-${crypto.randomUUID()}`;

async function storageOf(queue: string, token: string | undefined): Promise<string> {
	const name = await queueObjectName(queue, token);
	return JSON.stringify(await storageDump(env.GATEWAY_QUEUE.getByName(name)));
}

describe("bot tokens never reach logs, responses or storage", () => {
	it.each<[string, GatewayBotAnswer, number]>([
		["Discord accepts the token", { body: gatewayBotBody(2) }, 200],
		["Discord rejects the token", { status: 401, body: { message: "401: Unauthorized" } }, 401],
		["Discord rate-limits", { status: 429, body: { retry_after: 3 } }, 200],
		["Discord fails", { fail: true }, 200],
		["Discord answers nonsense", { body: { token: "echo" } }, 200],
	])("when %s", async (_name, answer, status) => {
		const logs = captureConsole();
		fakeDiscord(answer);
		const token = uniqueToken();
		const queue = uniqueQueue();
		const response = await call(`/${queue}?shard=1`, { headers: { authorization: `Bot ${token}` } });
		expect(response.status).toBe(status);
		expect(await response.text()).not.toContain(token);
		await vi.waitFor(() => expect(logs.text()).toContain("discord_gateway_bot"));
		expect(logs.text()).not.toContain(token);
		const name = await queueObjectName(queue, token);
		expect(name).not.toContain(token);
		const stored = await storageOf(queue, token);
		expect(stored).toContain("bucket_grant");
		expect(stored).not.toContain(token);
	});

	it("when the token is malformed, sent twice, or in X-Bot-Token and Basic", async () => {
		const logs = captureConsole();
		const discord = fakeDiscord({ body: gatewayBotBody(1) });
		const token = uniqueToken();
		const sends: Record<string, string>[] = [
			{ authorization: `Bot ${token}/x` },
			{ authorization: `Bot ${token}`, "x-bot-token": token },
			{ "x-bot-token": `${token} x` },
			{ authorization: `Basic ${btoa(`${token}/:x`)}` },
		];
		for (const headers of sends) {
			const response = await call(`/${uniqueQueue()}`, { headers });
			expect(response.status).toBe(401);
			expect(await response.text()).not.toContain(token);
		}
		expect(discord).not.toHaveBeenCalled();
		expect(logs.text()).not.toContain(token);
	});

	it("when the token comes from the DISCORD_TOKEN secret", async () => {
		const logs = captureConsole();
		fakeDiscord({ body: gatewayBotBody(1) });
		const token = uniqueToken();
		const queue = uniqueQueue();
		const response = await app.fetch(new Request(`http://queue.test/${queue}`), { ...env, DISCORD_TOKEN: token });
		expect(response.status).toBe(200);
		await vi.waitFor(() => expect(logs.text()).toContain("discord_gateway_bot"));
		expect(logs.text()).not.toContain(token);
		expect(await storageOf(queue, token)).not.toContain(token);
	});
});

describe("QUEUE_SECRET never reaches logs, responses or storage", () => {
	it("whether the request presents it, a wrong one, or part of it", async () => {
		const logs = captureConsole();
		fakeDiscord({ body: gatewayBotBody(1) });
		const withSecret = { ...env, QUEUE_SECRET: secret } as Env;
		const token = uniqueToken();
		const queue = uniqueQueue();
		const attempts: [Record<string, string>, number][] = [
			[{ authorization: `Bearer ${secret}`, "x-bot-token": token }, 200],
			[{ authorization: `Basic ${btoa(`:${secret}`)}` }, 200],
			[{ authorization: `Bearer ${secret.slice(0, -1)}` }, 401],
			[{ authorization: `Basic ${btoa(`${token}:${secret}x`)}` }, 401],
			[{ authorization: `Bot ${secret}` }, 401],
		];
		for (const [headers, status] of attempts) {
			const response = await app.fetch(new Request(`http://queue.test/${queue}?shard=1`, { headers }), withSecret);
			expect(response.status).toBe(status);
			const text = await response.text();
			expect(text).not.toContain(secret.slice(0, -1));
			expect(text).not.toContain(token);
		}
		await vi.waitFor(() => expect(logs.text()).toContain("discord_gateway_bot"));
		expect(logs.text()).not.toContain(secret.slice(0, -1));
		expect(logs.text()).not.toContain(token);
		for (const stored of [await storageOf(queue, token), await storageOf(queue, undefined)]) {
			expect(stored).toContain("bucket_grant");
			expect(stored).not.toContain(secret.slice(0, -1));
			expect(stored).not.toContain(token);
		}
	});
});
