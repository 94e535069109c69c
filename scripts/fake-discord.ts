import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** A local stand-in for Discord's `GET /gateway/bot`, for `wrangler dev`'s `DISCORD_API_URL`. */
export async function startFakeDiscord(maxConcurrency: number): Promise<{ apiUrl: string; stop(): Promise<void> }> {
	const server = createServer((request, response) => {
		const known = request.url === "/api/v10/gateway/bot" && request.headers.authorization?.startsWith("Bot ");
		response.writeHead(known ? 200 : 404, { "content-type": "application/json" });
		response.end(
			JSON.stringify(
				known
					? {
							url: "wss://gateway.discord.gg",
							shards: 1,
							session_start_limit: {
								total: 1000,
								remaining: 999,
								reset_after: 14_400_000,
								max_concurrency: maxConcurrency,
							},
						}
					: { message: "404: Not Found" },
			),
		);
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		apiUrl: `http://127.0.0.1:${port}/api/v10`,
		stop: () =>
			new Promise((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
