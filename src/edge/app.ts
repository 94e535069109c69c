import type { Context } from "hono";
import { Hono } from "hono";
import { ConfigError } from "../config/config";
import { errorMessage, log } from "../log";
import type { GatewayQueue } from "../object/gateway-queue";
import { dashboardHeaders, dashboardPage } from "./dashboard/page";
import { ApiError } from "./errors";
import { contentTypes, exposition, formatFor } from "./exposition";
import { metricFamilies } from "./metric-families";
import { type AppEnv, checkRequest, healthPath } from "./middleware";
import { queueObjectName, readQueue, waitForGrant } from "./queue-call";
import { grantReply, healthReply, statusReply } from "./replies";
import { checkQueryParameters, parseQueueName, parseShard, rawPathOf, readsRefusals } from "./validation";

const app = new Hono<AppEnv>();

app.use(checkRequest);

app.on(["GET", "HEAD"], healthPath, (c) => c.json(healthReply));
app.all(healthPath, getOnly(healthPath));

app.on(["GET", "HEAD"], "/_/queues/*", async (c) => {
	const { queue, stubOf } = await serviceRouteQueue(c, "/_/queues");
	const status = await readQueue(queue, () => stubOf().status(queue));
	return c.json(statusReply(status), 200, { "cache-control": "no-store" });
});
app.all("/_/queues/*", getOnly("/_/queues/{queue}"));

// Prometheus or OpenMetrics, as the scraper's Accept asks; the same names and credentials as the status.
app.on(["GET", "HEAD"], "/_/metrics/*", async (c) => {
	const { queue, stubOf } = await serviceRouteQueue(c, "/_/metrics");
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
	const queue = queueNameAfter("/_/dashboard", c.req.url, c.var.config.maxQueueNameLength);
	return c.html(dashboardPage(queue), 200, dashboardHeaders);
});
app.all("/_/dashboard/*", getOnly("/_/dashboard/{queue}"));

app.all("/_/*", () => {
	throw new ApiError("not_found", "No such route: paths under /_/ are reserved for the service.");
});

app.all("*", async (c) => {
	const { config } = c.var;
	const queue = parseQueueName(rawPathOf(c.req.url), config.maxQueueNameLength);
	const query = c.var.url.searchParams;
	checkQueryParameters(query, ["shard"]);
	const shard = parseShard(query);
	const refusals = readsRefusals(c.req.raw.headers);
	const { botToken: token } = c.var;
	const grant = await waitForGrant(
		await stubsOf(c, queue),
		{ queue, shard, refusals, ...(token && { token }) },
		{ timeoutMs: config.waitTimeoutMs, signal: c.req.raw.signal, waitUntil: waitUntilOf(c), refusals },
	);
	return c.json(grantReply(grant));
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
async function stubsOf(c: Context<AppEnv>, queue: string): Promise<() => DurableObjectStub<GatewayQueue>> {
	const name = await queueObjectName(queue, c.var.botToken);
	return () => c.env.GATEWAY_QUEUE.getByName(name);
}

/** The queue a read-only service route names, and its object; such a route takes no query parameter. */
async function serviceRouteQueue(
	c: Context<AppEnv>,
	prefix: string,
): Promise<{ queue: string; stubOf: () => DurableObjectStub<GatewayQueue> }> {
	const queue = queueNameAfter(prefix, c.req.url, c.var.config.maxQueueNameLength);
	checkQueryParameters(c.var.url.searchParams, []);
	return { queue, stubOf: await stubsOf(c, queue) };
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
