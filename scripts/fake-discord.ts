/**
 * A fake Discord on one local port, enough for `@discordjs/ws` and the queue:
 * `GET /api/v10/gateway/bot`, and a gateway that says HELLO, acknowledges
 * heartbeats and answers IDENTIFY with READY, recording when each IDENTIFY came.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { GatewayDispatchEvents, GatewayOpcodes } from "discord-api-types/v10";
import { WebSocketServer } from "ws";

export interface Identify {
	shard: number;
	/** `performance.now()` when the IDENTIFY arrived. */
	atMs: number;
}

export interface FakeDiscord {
	/** For `DISCORD_API_URL`: `http://127.0.0.1:{port}/api/v10`. */
	apiUrl: string;
	/** For `@discordjs/rest`'s `api` option (it adds `/v10`). */
	restApiBase: string;
	identifies: Identify[];
	/** Authorization headers of the `/gateway/bot` calls. */
	gatewayBotAuthorizations: string[];
	close(): Promise<void>;
}

export interface FakeDiscordOptions {
	maxConcurrency: number;
	/** The one bot token `/gateway/bot` accepts; without it, any `Bot` token. */
	token?: string;
	shards?: number;
	/** What `/gateway/bot` reports as `session_start_limit.remaining`. */
	remaining?: number;
}

export async function startFakeDiscord({
	maxConcurrency,
	token,
	shards = 1,
	remaining = 1000,
}: FakeDiscordOptions): Promise<FakeDiscord> {
	const identifies: Identify[] = [];
	const gatewayBotAuthorizations: string[] = [];
	const server = createServer((request: IncomingMessage, response: ServerResponse) => {
		const authorization = request.headers.authorization ?? "";
		if (request.method !== "GET" || request.url !== "/api/v10/gateway/bot")
			return reply(response, 404, { message: "404: Not Found", code: 0 });
		gatewayBotAuthorizations.push(authorization);
		const accepted = token === undefined ? authorization.startsWith("Bot ") : authorization === `Bot ${token}`;
		if (!accepted) return reply(response, 401, { message: "401: Unauthorized", code: 0 });
		reply(response, 200, {
			url: gatewayUrl,
			shards,
			session_start_limit: { total: 1000, remaining, reset_after: 86_400_000, max_concurrency: maxConcurrency },
		});
	});
	const gateway = new WebSocketServer({ server });
	gateway.on("connection", (socket) => {
		const send = (payload: object) => socket.send(JSON.stringify(payload));
		send({ op: GatewayOpcodes.Hello, d: { heartbeat_interval: 41_250 } });
		socket.on("message", (data) => {
			const payload = JSON.parse(String(data)) as { op: number; d: { shard?: [number, number] } };
			if (payload.op === GatewayOpcodes.Heartbeat) send({ op: GatewayOpcodes.HeartbeatAck });
			if (payload.op !== GatewayOpcodes.Identify) return;
			const [shard = -1, shardCount = 1] = payload.d.shard ?? [];
			identifies.push({ shard, atMs: performance.now() });
			send({
				op: GatewayOpcodes.Dispatch,
				t: GatewayDispatchEvents.Ready,
				s: 1,
				d: {
					v: 10,
					user: { id: "1", username: "fake", discriminator: "0", global_name: null, avatar: null, bot: true },
					guilds: [],
					session_id: `session-${shard}`,
					resume_gateway_url: gatewayUrl,
					shard: [shard, shardCount],
					application: { id: "1", flags: 0 },
				},
			});
		});
	});
	server.listen(0, "127.0.0.1");
	await once(server, "listening");
	const { port } = server.address() as AddressInfo;
	const gatewayUrl = `ws://127.0.0.1:${port}`;
	return {
		apiUrl: `http://127.0.0.1:${port}/api/v10`,
		restApiBase: `http://127.0.0.1:${port}/api`,
		identifies,
		gatewayBotAuthorizations,
		close: async () => {
			for (const socket of gateway.clients) socket.terminate();
			gateway.close();
			server.closeAllConnections();
			await new Promise((resolve) => server.close(resolve));
		},
	};
}

function reply(response: ServerResponse, status: number, body: object): void {
	response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
