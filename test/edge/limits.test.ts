import { describe, expect, it } from "vitest";
import app from "../../src/edge/app";
import { envWithStandIn, grantingStandIn } from "../support/worker";

describe("the Worker's request bounds follow their vars", () => {
	const withVars = (vars: Record<string, string>) => {
		const queue = grantingStandIn();
		const testEnv = envWithStandIn(queue, vars);
		return {
			fetch: (path: string, init?: RequestInit) => app.fetch(new Request(`http://q.test${path}`, init), testEnv),
			acquired: queue.reached,
		};
	};

	it("MAX_QUEUE_NAME_LENGTH", async () => {
		const queue = withVars({ MAX_QUEUE_NAME_LENGTH: "8" });
		expect((await queue.fetch("/abcdefgh")).status).toBe(200);
		const response = await queue.fetch("/abcdefghi");
		expect(response.status).toBe(400);
		const body = await response.json<{ error: string; message: string }>();
		expect(body).toMatchObject({ error: "invalid_queue_name" });
		expect(body.message).toContain("1-8 characters");
	});

	it("MAX_URL_LENGTH counts the path and query, not the host", async () => {
		const queue = withVars({ MAX_URL_LENGTH: "256" });
		const atBound = `/q?pad=${"x".repeat(256 - 7)}`;
		// Within the bound the request is read further, and its unknown parameter refused.
		expect(await (await queue.fetch(atBound)).json()).toMatchObject({ error: "invalid_query" });
		const over = await queue.fetch(`${atBound}x`);
		expect(over.status).toBe(414);
		expect(await over.json()).toMatchObject({ error: "url_too_long" });
		expect(queue.acquired).toHaveLength(0);
	});

	it("MAX_HEADER_BYTES counts every header as a `name: value` line", async () => {
		const queue = withVars({ MAX_HEADER_BYTES: "1024" });
		const padded = (length: number) => ({ headers: { "x-pad": "x".repeat(length) } });
		// "x-pad: " + value + CRLF = 1024 bytes.
		expect((await queue.fetch("/q", padded(1024 - 9))).status).toBe(200);
		const over = await queue.fetch("/q", padded(1024 - 8));
		expect(over.status).toBe(431);
		expect(await over.json()).toMatchObject({ error: "headers_too_large" });
	});

	it("applies the bounds to /_/health too, before anything else", async () => {
		const queue = withVars({ MAX_URL_LENGTH: "256", QUEUE_SECRET: "0123456789abcdef" });
		expect((await queue.fetch(`/_/health?${"x".repeat(300)}`)).status).toBe(414);
		expect((await queue.fetch(`/q?${"x".repeat(300)}`)).status).toBe(414);
	});
});
