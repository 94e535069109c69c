/**
 * A fake Discord on one local port, enough for the queue and for discord.js, Discordeno and
 * discord.py: `GET /api/v10/gateway/bot`, `/gateway`, `/users/@me` and `/oauth2/applications/@me`, and a gateway that says
 * HELLO, acknowledges heartbeats, answers IDENTIFY with READY and RESUME with RESUMED, recording
 * when each IDENTIFY came. It speaks JSON, plain or with `compress=zlib-stream` (discord.py always
 * asks for it), as the client asks; any other encoding or compression is refused with a close code.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { constants, createDeflate } from "node:zlib";
import { GatewayCloseCodes, GatewayDispatchEvents, GatewayOpcodes } from "discord-api-types/v10";
import { type WebSocket, WebSocketServer } from "ws";

export interface Identify {
	shard: number;
	/** `performance.now()` when the IDENTIFY arrived. */
	atMs: number;
	/** The transport compression of its connection, `null` for none. */
	compress: string | null;
	/** The `token` field as sent (`Bot ...` for Discordeno, the bare token for the others). */
	token: string;
}

export interface FakeDiscord {
	/** For `DISCORD_API_URL` and discord.py: `http://127.0.0.1:{port}/api/v10`. */
	apiUrl: string;
	/** For `@discordjs/rest`'s `api` option (it adds `/v10`). */
	restApiBase: string;
	/** The gateway, for clients told it directly (Discordeno). */
	gatewayUrl: string;
	identifies: Identify[];
	/** Gateway connections opened so far (a shard that reconnects opens another). */
	connectionsOpened(): number;
	/** RESUMEs, by shard, in order. */
	resumes: number[];
	/** Authorization headers of the `/gateway/bot` calls. */
	gatewayBotAuthorizations: string[];
	/** Closes the connection of `shard` (identified) with `code`, as Discord does. */
	closeShard(shard: number, code: number): void;
	/** Sends `shard` an Invalid Session (op 9) with `resumable`. */
	invalidateSession(shard: number, resumable: boolean): void;
	/** Answers the next RESUME of `shard` by closing with `code` instead of RESUMED. */
	failNextResume(shard: number, code: number): void;
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

const application = {
	id: "1",
	name: "fake",
	description: "",
	icon: null,
	rpc_origins: [],
	bot_public: false,
	bot_require_code_grant: false,
	owner: { id: "2", username: "owner", discriminator: "0", global_name: null, avatar: null },
	team: null,
	verify_key: "0",
	flags: 0,
};
const botUser = { id: "1", username: "fake", discriminator: "0", global_name: null, avatar: null, bot: true };

export async function startFakeDiscord({
	maxConcurrency,
	token,
	shards = 1,
	remaining = 1000,
}: FakeDiscordOptions): Promise<FakeDiscord> {
	const identifies: Identify[] = [];
	const resumes: number[] = [];
	const gatewayBotAuthorizations: string[] = [];
	/** The open connection of each identified shard. */
	const connections = new Map<number, { socket: WebSocket; send: (payload: object) => void }>();
	const failingResumes = new Map<number, number>();
	let opened = 0;
	const server = createServer((request: IncomingMessage, response: ServerResponse) => {
		const authorization = request.headers.authorization ?? "";
		const accepted = token === undefined ? authorization.startsWith("Bot ") : authorization === `Bot ${token}`;
		if (request.method !== "GET") return reply(response, 405, { message: "405: Method Not Allowed", code: 0 });
		if (request.url === "/api/v10/gateway") return reply(response, 200, { url: gatewayUrl });
		if (request.url === "/api/v10/gateway/bot") {
			gatewayBotAuthorizations.push(authorization);
			if (!accepted) return reply(response, 401, { message: "401: Unauthorized", code: 0 });
			return reply(response, 200, {
				url: gatewayUrl,
				shards,
				session_start_limit: { total: 1000, remaining, reset_after: 86_400_000, max_concurrency: maxConcurrency },
			});
		}
		// discord.py's login reads both.
		if (request.url === "/api/v10/users/@me" || request.url === "/api/v10/oauth2/applications/@me") {
			if (!accepted) return reply(response, 401, { message: "401: Unauthorized", code: 0 });
			if (request.url.endsWith("/users/@me"))
				return reply(response, 200, { ...botUser, flags: 0, public_flags: 0, verified: true, mfa_enabled: false });
			return reply(response, 200, application);
		}
		reply(response, 404, { message: "404: Not Found", code: 0 });
	});
	const gateway = new WebSocketServer({ server });
	gateway.on("connection", (socket, request) => {
		opened += 1;
		const query = new URL(request.url ?? "/", "http://gateway").searchParams;
		const compress = query.get("compress");
		if ((query.get("encoding") ?? "json") !== "json")
			return socket.close(GatewayCloseCodes.DecodeError, "the fake Discord speaks JSON only");
		if (compress !== null && compress !== "zlib-stream")
			return socket.close(GatewayCloseCodes.DecodeError, `the fake Discord has no ${compress}`);
		const send = compress === null ? (payload: object) => socket.send(JSON.stringify(payload)) : zlibStream(socket);
		let sequence = 0;
		const dispatch = (t: GatewayDispatchEvents, d: object) =>
			send({ op: GatewayOpcodes.Dispatch, t, s: ++sequence, d });
		send({ op: GatewayOpcodes.Hello, d: { heartbeat_interval: 41_250 } });
		socket.on("message", (data) => {
			const payload = JSON.parse(String(data)) as {
				op: number;
				d: { shard?: [number, number]; token?: string; session_id?: string };
			};
			if (payload.op === GatewayOpcodes.Heartbeat) send({ op: GatewayOpcodes.HeartbeatAck });
			if (payload.op === GatewayOpcodes.Resume) {
				const shard = Number(payload.d.session_id?.replace("session-", ""));
				resumes.push(shard);
				const failure = failingResumes.get(shard);
				failingResumes.delete(shard);
				if (failure !== undefined) return socket.close(failure, "resume failed at the fake Discord");
				connections.set(shard, { socket, send });
				dispatch(GatewayDispatchEvents.Resumed, {});
			}
			if (payload.op !== GatewayOpcodes.Identify) return;
			const [shard = -1, shardCount = 1] = payload.d.shard ?? [];
			identifies.push({ shard, atMs: performance.now(), compress, token: payload.d.token ?? "" });
			connections.set(shard, { socket, send });
			dispatch(GatewayDispatchEvents.Ready, {
				v: 10,
				user: botUser,
				guilds: [],
				private_channels: [],
				relationships: [],
				presences: [],
				session_id: `session-${shard}`,
				resume_gateway_url: gatewayUrl,
				shard: [shard, shardCount],
				application: { id: "1", flags: 0 },
			});
		});
	});
	server.listen(0, "127.0.0.1");
	await once(server, "listening");
	const { port } = server.address() as AddressInfo;
	const gatewayUrl = `ws://127.0.0.1:${port}`;
	const connectionOf = (shard: number) => {
		const connection = connections.get(shard);
		if (!connection) throw new Error(`shard ${shard} has no open connection`);
		return connection;
	};
	return {
		apiUrl: `http://127.0.0.1:${port}/api/v10`,
		restApiBase: `http://127.0.0.1:${port}/api`,
		gatewayUrl,
		identifies,
		connectionsOpened: () => opened,
		resumes,
		gatewayBotAuthorizations,
		closeShard: (shard, code) => connectionOf(shard).socket.close(code, "closed by the fake Discord"),
		invalidateSession: (shard, resumable) =>
			connectionOf(shard).send({ op: GatewayOpcodes.InvalidSession, d: resumable }),
		failNextResume: (shard, code) => {
			failingResumes.set(shard, code);
		},
		close: async () => {
			for (const socket of gateway.clients) socket.terminate();
			gateway.close();
			server.closeAllConnections();
			await new Promise((resolve) => server.close(resolve));
		},
	};
}

/** Discord's zlib-stream: one zlib context per connection, each payload ending in a sync flush (`00 00 ff ff`). */
function zlibStream(socket: WebSocket): (payload: object) => void {
	const deflate = createDeflate();
	let chunks: Buffer[] = [];
	deflate.on("data", (chunk: Buffer) => chunks.push(chunk));
	// One payload at a time, so each message holds exactly its own flushed bytes.
	let previous = Promise.resolve();
	return (payload) => {
		previous = previous.then(
			() =>
				new Promise<void>((resolve) => {
					deflate.write(JSON.stringify(payload));
					deflate.flush(constants.Z_SYNC_FLUSH, () => {
						const message = Buffer.concat(chunks);
						chunks = [];
						if (socket.readyState === socket.OPEN) socket.send(message);
						resolve();
					});
				}),
		);
	};
}

function reply(response: ServerResponse, status: number, body: object): void {
	response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
