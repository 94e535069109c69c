import type { Context } from "hono";
import { Hono } from "hono";
import { authorize, botTokenOf } from "./auth";
import { ConfigError, configOf } from "./config";
import { ApiError } from "./errors";
import { errorMessage, log } from "./log";
import { queueObjectName, waitForGrant } from "./queue-client";
import { checkRequestSize, parseQueueName, parseShard, rawPathOf } from "./validation";

/** The reference server's grant message; clients may compare it verbatim. */
const grantMessage = "You're free to connect now! :)";

const app = new Hono<{ Bindings: Env }>();

app.use(async (c, next) => {
	configOf(c.env);
	await next();
});

// Size limits, then the deployment secret, for every route but the health check
// (and for routes registered later): nothing reaches a queue object before this.
app.use(async (c, next) => {
	const config = configOf(c.env);
	checkRequestSize(c.req.raw, config);
	const isHealthCheck = c.req.path === "/_/health" && (c.req.method === "GET" || c.req.method === "HEAD");
	if (!isHealthCheck) await authorize(c.req.raw, config);
	await next();
});

app.on(["GET", "HEAD"], "/_/health", (c) => c.json({ status: "ok" }));
app.all("/_/health", () => {
	throw new ApiError("method_not_allowed", "Use GET for /_/health.", { headers: { allow: "GET, HEAD" } });
});
app.all("/_/*", () => {
	throw new ApiError("not_found", "No such route: paths under /_/ are reserved for the service.");
});

app.all("*", async (c) => {
	const config = configOf(c.env);
	const queue = parseQueueName(rawPathOf(c.req.url), config.maxQueueNameLength);
	const shard = parseShard(new URL(c.req.url).searchParams);
	const token = botTokenOf(c.req.raw, config);

	const stub = c.env.GATEWAY_QUEUE.getByName(await queueObjectName(queue, token));
	const grant = await waitForGrant(
		stub,
		{ queue, shard, ...(token && { token }) },
		{ timeoutMs: config.waitTimeoutMs, signal: c.req.raw.signal, waitUntil: waitUntilOf(c) },
	);
	return c.json({
		message: grantMessage,
		...(grant.shard !== null && { shard: grant.shard }),
		bucket: grant.bucket,
		waited_ms: grant.waitedMs,
		granted_at: grant.grantedAtMs,
	});
});

app.notFound(() => new ApiError("not_found", "No such route.").toResponse());

app.onError((error) => {
	if (error instanceof ApiError) return error.toResponse();
	if (error instanceof ConfigError) return new ApiError("misconfigured", error.message).toResponse();
	log("unexpected_error", { error: errorMessage(error) });
	return new ApiError("internal", "Unexpected error.").toResponse();
});

/** `waitUntil` of the request, or nothing when the app is called without an execution context. */
function waitUntilOf(c: Context): (promise: Promise<unknown>) => void {
	return (promise) => {
		try {
			c.executionCtx.waitUntil(promise);
		} catch {
			// No execution context: the promise runs all the same.
		}
	};
}

export default app;
