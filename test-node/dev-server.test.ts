import { afterAll, beforeAll, expect, test } from "vitest";
import { type DevServer, startDevServer } from "../tools/dev-server.ts";

let server: DevServer;
beforeAll(async () => {
	server = await startDevServer();
});
afterAll(async () => {
	await server?.stop();
});

test("npm start's server answers the health route", async () => {
	const response = await fetch(`${server.url}/_/health`);
	expect(response.status).toBe(200);
	expect(await response.json()).toEqual({ status: "ok" });
});
