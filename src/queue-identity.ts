/**
 * The queue's Durable Object name: the queue name, plus a SHA-256 of the bot
 * token when there is one, so only holders of the token reach that queue and the
 * token itself is never a name.
 */
export async function queueObjectName(queue: string, token: string | undefined): Promise<string> {
	if (token === undefined) return `queue:${queue}`;
	const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
	const hash = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
	return `queue:${queue}:bot:${hash}`;
}
