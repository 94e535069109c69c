/** The bench's HTTP client (undici) against a `wrangler dev` server. */
import { Agent, request } from "undici";
import type { GrantRecord } from "./analysis.ts";

/** Enough connections for every held request at once; kept open between warm-up and measurement. */
export const agent = new Agent({ connections: null, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 120_000 });

export interface GrantBody {
	shard?: number;
	bucket: number;
	waited_ms: number;
	granted_at: number;
}

/** GETs a URL and parses its JSON body; throws on anything but 200. */
export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
	const response = await request(url, { dispatcher: agent, ...(signal && { signal }) });
	const text = await response.body.text();
	if (response.statusCode !== 200) throw new Error(`${url}: HTTP ${response.statusCode} ${text}`);
	return JSON.parse(text) as T;
}

export async function requestGrant(
	baseUrl: string,
	queue: string,
	shard: number,
	signal?: AbortSignal,
): Promise<GrantRecord & { waitedMs: number }> {
	const body = await getJson<GrantBody>(`${baseUrl}/${queue}?shard=${shard}`, signal);
	return {
		shard: body.shard ?? -1,
		bucket: body.bucket,
		grantedAtMs: body.granted_at,
		arrivedAtMs: body.granted_at - body.waited_ms,
		waitedMs: body.waited_ms,
	};
}

/**
 * Opens `connections` sockets (kept alive) and loads the Worker and the queue
 * object's code, so a measured batch starts on warm connections.
 */
export async function warmUp(baseUrl: string, connections: number): Promise<void> {
	await Promise.all(Array.from({ length: connections }, () => getJson(`${baseUrl}/_/health`)));
	await requestGrant(baseUrl, `warm-up-${Date.now()}`, 0);
}

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh queue name, so every bucket starts idle. */
export function freshQueueName(label: string): string {
	return `bench-${label}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
}
