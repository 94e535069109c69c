import { get } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, freePort, startDevServer } from "../tools/dev-server.ts";

/** End to end through `wrangler dev`'s HTTP parser, with real clients and raw request lines. */
const secret = "e2e-secret-0123456789abcdef";
let server: DevServer;

beforeAll(async () => {
	// Discord is a closed local port: bot queues fall back to one bucket, and nothing leaves the machine.
	const closedPort = await freePort();
	server = await startDevServer({ QUEUE_SECRET: secret, DISCORD_API_URL: `http://127.0.0.1:${closedPort}/api` });
});
afterAll(async () => {
	await server?.stop();
});

/** `http.get` with the credentials in the URL, as a client that can only be given a URL does. */
function getWithUserInfo(userInfo: string, path: string): Promise<{ status: number; body: string }> {
	const url = new URL(path, server.url);
	return new Promise((resolve, reject) => {
		get(`http://${userInfo}@${url.host}${url.pathname}${url.search}`, (response) => {
			let body = "";
			response.on("data", (chunk: Buffer) => {
				body += chunk;
			});
			response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
		}).on("error", reject);
	});
}

/** Sends `head` as written (request line and headers) and returns the status line. */
function rawStatusLine(head: string): Promise<string> {
	const { port, hostname } = new URL(server.url);
	return new Promise((resolve, reject) => {
		let answer = "";
		const socket = connect(Number(port), hostname, () => socket.write(`${head}Connection: close\r\n\r\n`));
		socket.on("data", (chunk: Buffer) => {
			answer += chunk;
		});
		socket.on("end", () => resolve(answer.split("\r\n")[0] ?? ""));
		socket.on("error", reject);
	});
}

describe("with QUEUE_SECRET, through wrangler dev", () => {
	it("answers 401 with a challenge to a request without the secret, and 200 to the health check", async () => {
		const response = await fetch(`${server.url}/e2e-a?shard=1`);
		expect(response.status).toBe(401);
		expect(response.headers.get("www-authenticate")).toContain("Bearer");
		expect(await response.json()).toMatchObject({ error: "unauthorized" });
		expect((await fetch(`${server.url}/_/health`)).status).toBe(200);
	});

	it("grants a client that puts the secret in the URL's user info (HTTP Basic)", async () => {
		expect(await getWithUserInfo(`:${secret}`, "/e2e-b?shard=1")).toMatchObject({ status: 200 });
		const withToken = await getWithUserInfo(`abc.def:${secret}`, "/e2e-b?shard=1");
		expect(withToken.status).toBe(200);
		expect(withToken.body).not.toContain("abc.def");
		expect((await getWithUserInfo(":wrong-secret-0123456789", "/e2e-b?shard=1")).status).toBe(401);
	});

	it("grants Authorization: Bearer with X-Bot-Token", async () => {
		const headers = { authorization: `Bearer ${secret}`, "x-bot-token": "abc.def" };
		expect((await fetch(`${server.url}/e2e-c?shard=2`, { headers })).status).toBe(200);
	});

	it.each([
		["a dot segment, resolved before the Worker", "GET /x/../e2e-d HTTP/1.1", "HTTP/1.1 200 OK"],
		[
			"an absolute-form target (the host is not the queue)",
			"GET http://other.example/e2e-e HTTP/1.1",
			"HTTP/1.1 200 OK",
		],
		["dot segments above the root", "GET /../../etc/passwd HTTP/1.1", "HTTP/1.1 400 Bad Request"],
		["raw UTF-8 in the path", "GET /café HTTP/1.1", "HTTP/1.1 400 Bad Request"],
		["a 10 kB request line", `GET /${"a".repeat(10_000)} HTTP/1.1`, "HTTP/1.1 414 URI Too Long"],
		["an invalid method", "G@T /e2e-f HTTP/1.1", "HTTP/1.1 400 Bad Request"],
	])("answers %s deliberately", async (_name, requestLine, statusLine) => {
		const head = `${requestLine}\r\nHost: q.test\r\nAuthorization: Bearer ${secret}\r\n`;
		expect(await rawStatusLine(head)).toBe(statusLine);
	});

	it("answers 431 to a 20 kB header", async () => {
		const head = `GET /e2e-g HTTP/1.1\r\nHost: q.test\r\nAuthorization: Bearer ${secret}\r\nX-Pad: ${"a".repeat(20_000)}\r\n`;
		expect(await rawStatusLine(head)).toBe("HTTP/1.1 431 Request Header Fields Too Large");
	});
});
