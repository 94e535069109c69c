import { auth as basicCredentialsOf } from "hono/utils/basic-auth";
import type { Config } from "../config/config";
import { log } from "../log";
import { ApiError } from "./errors";

/**
 * The credentials a request presents: the deployment's secret and a bot token.
 * Neither is ever logged, stored or echoed.
 */

const botTokenPattern = /^[A-Za-z0-9._-]{1,256}$/;

/**
 * Sent with every 401 for a missing or wrong secret. Not `Basic`, though Basic is
 * accepted: a browser asked for Basic credentials keeps sending them, and any
 * other site's page could then take shards' places with them.
 */
export const secretChallenge = 'Bearer realm="gateway-queue", charset="UTF-8"';

const knownSchemes = new Set(["bot", "bearer", "basic"]);

/**
 * The bot token a request's queue belongs to (the request's own, or else the
 * `DISCORD_TOKEN` secret), once its credentials pass: the secret first, when
 * `secretRequired` and the deployment has one, so a stranger learns nothing from
 * how the rest of the request is checked; then the token, refused when malformed
 * (`invalid_token`) or sent two ways at once.
 */
export async function botTokenFor(
	request: Request,
	config: Config,
	{ secretRequired }: { secretRequired: boolean },
): Promise<string | undefined> {
	if (secretRequired && config.queueSecret !== undefined) await authorize(presentedSecret(request), config.queueSecret);
	const presented = presentedBotToken(request);
	if (secretRequired && config.queueSecret === undefined && presented === undefined) warnOpenOnce(config);
	return presented ?? config.discordToken;
}

/** `Authorization: Bearer <secret>`, or the password of `Authorization: Basic`. */
export function presentedSecret(request: Request): string | undefined {
	const bearer = request.headers.get("authorization")?.match(/^\s*Bearer\s+(\S+)\s*$/i)?.[1];
	return bearer ?? basicCredentialsOf(request)?.password;
}

/** `Authorization: Bot <token>`, `X-Bot-Token: [Bot ]<token>`, or the user name of `Authorization: Basic`. */
export function presentedBotToken(request: Request): string | undefined {
	checkAuthorizationScheme(request.headers.get("authorization"));
	const header = request.headers.get("x-bot-token");
	const fromHeader =
		header === null ? undefined : checkBotToken(header.replace(/^\s*Bot(\s+|$)/i, "").trim(), "X-Bot-Token");
	const user = basicCredentialsOf(request)?.username;
	const fromAuthorization =
		parseBotToken(request.headers.get("authorization")) ??
		(user ? checkBotToken(user, "The Basic user name") : undefined);
	return onlyToken(fromAuthorization, fromHeader);
}

/**
 * An `Authorization` header in no scheme we know (a bare token, `Token ...`)
 * would otherwise carry nothing, and the request land in another queue. It is
 * not echoed: a bare token is its own "scheme".
 */
function checkAuthorizationScheme(authorization: string | null): void {
	const scheme = authorization?.trim().split(/\s/, 1)[0]?.toLowerCase();
	if (scheme === undefined || scheme === "" || knownSchemes.has(scheme)) return;
	throw new ApiError(
		"invalid_authorization",
		"Authorization must be 'Bot <token>', 'Bearer <secret>' or 'Basic ...': this one names no scheme this service knows.",
		{ details: { header: "Authorization" } },
	);
}

function onlyToken(first: string | undefined, second: string | undefined): string | undefined {
	if (first !== undefined && second !== undefined) {
		throw new ApiError("invalid_token", "Send the bot token once: in Authorization or in X-Bot-Token, not both.");
	}
	return first ?? second;
}

/**
 * Lets a request through when it presents the secret; otherwise throws
 * `unauthorized`. Digests of equal length are compared in constant time, so the
 * answer's timing tells nothing about the secret, not even its length.
 */
async function authorize(presented: string | undefined, secret: string): Promise<void> {
	if (await sameSecret(presented ?? "", secret)) return;
	throw new ApiError(
		"unauthorized",
		"This deployment needs its secret: Authorization: Bearer <secret>, or Basic with the secret as password.",
		{ headers: { "www-authenticate": secretChallenge } },
	);
}

/**
 * The bot token of `Authorization: Bot <token>`, or `undefined` for no header or
 * another scheme. A `Bot` header without a well-formed token is rejected, and
 * the token is never echoed back.
 */
export function parseBotToken(authorization: string | null): string | undefined {
	const match = authorization?.match(/^\s*Bot(?:\s+(.*))?$/i);
	if (!match) return undefined;
	return checkBotToken(match[1]?.trim() ?? "", "Authorization: Bot <token>");
}

/** `token` if it is shaped like a bot token; else `invalid_token`, naming where it came from but not echoing it. */
function checkBotToken(token: string, source: string): string {
	if (botTokenPattern.test(token)) return token;
	throw new ApiError("invalid_token", `${source} does not carry a well-formed bot token.`);
}

async function sameSecret(presented: string, expected: string): Promise<boolean> {
	const digest = (text: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
	const [a, b] = await Promise.all([digest(presented), digest(expected)]);
	return crypto.subtle.timingSafeEqual(a, b);
}

const warned = new WeakSet<Config>();

/** One log line per isolate: an open queue is a choice the operator should know they made. */
function warnOpenOnce(config: Config): void {
	if (warned.has(config)) return;
	warned.add(config);
	log("open_queue", {
		level: "warn",
		message:
			"QUEUE_SECRET is not set and a request carried no bot token: anyone who knows this URL can fill, stall or read " +
			(config.discordToken === undefined ? "tokenless queues" : "the DISCORD_TOKEN bot's queues") +
			". Set QUEUE_SECRET, or have every client send its bot token (docs/security.md).",
	});
}
