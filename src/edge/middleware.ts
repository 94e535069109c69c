import { createMiddleware } from "hono/factory";
import { type Config, configOf } from "../config/config";
import { botTokenFor } from "./auth";
import { ApiError } from "./errors";
import { checkRequestSize } from "./validation";

/** What every route reads of a request, parsed once by `checkRequest`. */
export type AppEnv = {
	Bindings: Env;
	Variables: {
		config: Config;
		/** The request's URL, parsed once. */
		url: URL;
		/** The bot the request's queue belongs to: its own token, or `DISCORD_TOKEN`. */
		botToken: string | undefined;
	};
};

export const healthPath = "/_/health";

/**
 * Before every route: the settings, the size limits, then (but for the health
 * check) the page's site, the deployment's secret and the bot token. Nothing
 * reaches a queue object before this.
 */
export const checkRequest = createMiddleware<AppEnv>(async (c, next) => {
	const config = configOf(c.env);
	c.set("config", config);
	const url = new URL(c.req.url);
	c.set("url", url);
	checkRequestSize(c.req.raw, url, config);
	const isRead = c.req.method === "GET" || c.req.method === "HEAD";
	if (isRead && c.req.path === healthPath) return next();
	// The dashboard page holds no queue data: a browser opening it cannot send a header, and its
	// script sends the credentials from the URL fragment with every status read.
	const isDashboardPage = isRead && c.req.path.startsWith("/_/dashboard/");
	// No shard runs in a browser: a page of another site must not take places or read queues with
	// credentials the browser adds by itself.
	if (!isDashboardPage && c.req.header("sec-fetch-site") === "cross-site") {
		throw new ApiError("cross_site", "Requests from another site's page are refused.");
	}
	c.set("botToken", await botTokenFor(c.req.raw, config, { secretRequired: !isDashboardPage }));
	await next();
});
