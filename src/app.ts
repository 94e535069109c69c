import { Hono } from "hono";
import { ConfigError, configOf } from "./config";
import { ApiError } from "./errors";
import { log } from "./log";
import type { AcquireResult } from "./queue";
import { queueObjectName } from "./queue-identity";
import { parseBotToken, parseQueueName, parseShard, rawPathOf } from "./validation";

/** The reference server's grant message; clients may compare it verbatim. */
export const grantMessage = "You're free to connect now! :)";

const app = new Hono<{ Bindings: Env }>();

app.use(async (c, next) => {
	configOf(c.env);
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
	const queue = parseQueueName(rawPathOf(c.req.url));
	const shard = parseShard(new URL(c.req.url).searchParams);
	const token = parseBotToken(c.req.header("authorization") ?? null) ?? config.discordToken;

	const stub = c.env.GATEWAY_QUEUE.getByName(await queueObjectName(queue, token));
	const ticket = crypto.randomUUID();
	const giveUpPlace = () => {
		const cancelling = stub.cancel(ticket).catch(() => false);
		try {
			c.executionCtx.waitUntil(cancelling);
		} catch {
			// No execution context (the app called directly): the promise still runs.
		}
	};
	const signal = c.req.raw.signal;
	if (signal.aborted) throw acquireError("cancelled");
	signal.addEventListener("abort", giveUpPlace, { once: true });
	let result: AcquireResult | "timeout";
	try {
		result = await withDeadline<AcquireResult>(
			stub.acquire({ ticket, queue, shard, ...(token && { token }) }),
			config.waitTimeoutMs,
		);
	} catch (error) {
		log("queue_call_failed", { queue, error: error instanceof Error ? error.message : String(error) });
		throw new ApiError("queue_unavailable", "The queue was restarted or could not be reached; retry.", {
			retryAfterSeconds: 1,
		});
	} finally {
		signal.removeEventListener("abort", giveUpPlace);
	}

	if (result === "timeout") {
		giveUpPlace();
		throw new ApiError("queue_timeout", `No grant within WAIT_TIMEOUT_MS (${config.waitTimeoutMs} ms); retry.`, {
			retryAfterSeconds: 1,
		});
	}
	if (!result.ok) throw acquireError(result.error);
	return c.json({
		message: grantMessage,
		...(result.shard !== null && { shard: result.shard }),
		bucket: result.bucket,
		waited_ms: result.waitedMs,
		granted_at: result.grantedAtMs,
	});
});

app.notFound(() => new ApiError("not_found", "No such route.").toResponse());

app.onError((error) => {
	if (error instanceof ApiError) return error.toResponse();
	if (error instanceof ConfigError) return new ApiError("misconfigured", error.message).toResponse();
	log("unexpected_error", { error: error instanceof Error ? error.message : String(error) });
	return new ApiError("internal", "Unexpected error.").toResponse();
});

function acquireError(error: Extract<AcquireResult, { ok: false }>["error"]): ApiError {
	switch (error) {
		case "superseded":
			return new ApiError("superseded", "A newer request for this shard took this request's place in line.");
		case "cancelled":
			return new ApiError("cancelled", "The request was cancelled before it was granted.");
		case "unauthorized":
			return new ApiError("invalid_token", "Discord rejected the bot token.");
		case "overloaded":
			return new ApiError("queue_overloaded", "The queue holds as many waiting requests as it may; retry later.", {
				retryAfterSeconds: 5,
			});
	}
}

async function withDeadline<T>(promise: PromiseLike<T>, timeoutMs: number): Promise<T | "timeout"> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	const deadline = new Promise<"timeout">((resolve) => {
		timer = setTimeout(() => resolve("timeout"), timeoutMs);
	});
	try {
		return await Promise.race([promise, deadline]);
	} finally {
		if (timer !== undefined) clearTimeout(timer);
	}
}

export default app;
