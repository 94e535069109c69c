import type { Context } from "hono";
import { Hono } from "hono";
import { ConfigError, configOf } from "../config/config";
import { errorMessage, log } from "../log";
import type { GatewayQueue } from "../object/gateway-queue";
import { authorize, botTokenOf } from "./auth";
import { dashboardHeaders, dashboardPage } from "./dashboard/page";
import { ApiError } from "./errors";
import { contentTypes, exposition, formatFor } from "./exposition";
import { metricFamilies } from "./metric-families";
import { queueObjectName, readQueue, waitForGrant } from "./queue-call";
import {
	checkQueryParameters,
	checkRequestSize,
	parseQueueName,
	parseShard,
	rawPathOf,
	readsRefusals,
} from "./validation";

/** The reference server's grant message; clients may compare it verbatim. */
const grantMessage = "You're free to connect now! :)";

type AppEnv = { Bindings: Env };

const app = new Hono<AppEnv>();

app.use(async (c, next) => {
	configOf(c.env);
	await next();
});

// Size limits, then the deployment secret, for every route but the health check
// (and for routes registered later): nothing reaches a queue object before this.
app.use(async (c, next) => {
	const config = configOf(c.env);
	checkRequestSize(c.req.raw, config);
	const isRead = c.req.method === "GET" || c.req.method === "HEAD";
	// The dashboard page holds no queue data: a browser opening it cannot send a header, and its
	// script sends the credentials from the URL fragment with every status read.
	const isOpen = isRead && (c.req.path === "/_/health" || c.req.path.startsWith("/_/dashboard/"));
	// No shard runs in a browser: a page of another site must not take places or read queues with
	// credentials the browser adds by itself.
	if (!isOpen && c.req.header("sec-fetch-site") === "cross-site") {
		throw new ApiError("cross_site", "Requests from another site's page are refused.");
	}
	if (!isOpen) await authorize(c.req.raw, config);
	await next();
});

app.on(["GET", "HEAD"], "/_/health", (c) => c.json({ status: "ok" }));
app.all("/_/health", getOnly("/_/health"));

app.on(["GET", "HEAD"], "/_/queues/*", async (c) => {
	const queue = queueNameAfter("/_/queues", c.req.url, configOf(c.env).maxQueueNameLength);
	checkQueryParameters(new URL(c.req.url).searchParams, []);
	const { stubOf } = await queueOf(c, queue);
	const status = await readQueue(queue, () => stubOf().status(queue));
	return c.json(status, 200, { "cache-control": "no-store" });
});
app.all("/_/queues/*", getOnly("/_/queues/{queue}"));

// Prometheus or OpenMetrics, as the scraper's Accept asks; the same names and credentials as the status.
app.on(["GET", "HEAD"], "/_/metrics/*", async (c) => {
	const queue = queueNameAfter("/_/metrics", c.req.url, configOf(c.env).maxQueueNameLength);
	checkQueryParameters(new URL(c.req.url).searchParams, []);
	const { stubOf } = await queueOf(c, queue);
	const snapshot = await readQueue(queue, () => stubOf().metrics());
	const format = formatFor(c.req.header("accept"));
	return c.body(exposition(metricFamilies(queue, snapshot), format), 200, {
		"content-type": contentTypes[format],
		"cache-control": "no-store",
	});
});
app.all("/_/metrics/*", getOnly("/_/metrics/{queue}"));

// The page holds no queue data: it reads the status route, with the same credentials, once a second.
app.on(["GET", "HEAD"], "/_/dashboard/*", (c) => {
	const queue = queueNameAfter("/_/dashboard", c.req.url, configOf(c.env).maxQueueNameLength);
	botTokenOf(c.req.raw, configOf(c.env)); // the same credential rules: a malformed Bot token is a 401 here too
	return c.html(dashboardPage(queue), 200, dashboardHeaders);
});
app.all("/_/dashboard/*", getOnly("/_/dashboard/{queue}"));

app.all("/_/*", () => {
	throw new ApiError("not_found", "No such route: paths under /_/ are reserved for the service.");
});

app.all("*", async (c) => {
	const config = configOf(c.env);
	const queue = parseQueueName(rawPathOf(c.req.url), config.maxQueueNameLength);
	const query = new URL(c.req.url).searchParams;
	checkQueryParameters(query, ["shard"]);
	const shard = parseShard(query);
	const refusals = readsRefusals(c.req.raw.headers);
	const { stubOf, token } = await queueOf(c, queue);
	const grant = await waitForGrant(
		stubOf,
		{ queue, shard, refusals, ...(token && { token }) },
		{ timeoutMs: config.waitTimeoutMs, signal: c.req.raw.signal, waitUntil: waitUntilOf(c), refusals },
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

/**
 * The queue object a request reaches, named from the queue and the request's bot
 * token: a fresh stub at each call, since one that saw its object reset stays broken.
 */
async function queueOf(
	c: Context<AppEnv>,
	queue: string,
): Promise<{ stubOf: () => DurableObjectStub<GatewayQueue>; token: string | undefined }> {
	const token = botTokenOf(c.req.raw, configOf(c.env));
	const name = await queueObjectName(queue, token);
	return { stubOf: () => c.env.GATEWAY_QUEUE.getByName(name), token };
}

/** The queue named after a service route's prefix: `{prefix}/{queue}`, validated as the queue route does. */
function queueNameAfter(prefix: string, url: string, maxQueueNameLength: number): string {
	const path = rawPathOf(url);
	const rest = path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : "";
	if (rest === "" || rest === "/") throw new ApiError("not_found", `No such route: use ${prefix}/{queue}.`);
	return parseQueueName(rest, maxQueueNameLength);
}

function getOnly(route: string): () => never {
	return () => {
		throw new ApiError("method_not_allowed", `Use GET for ${route}.`, { headers: { allow: "GET, HEAD" } });
	};
}

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
