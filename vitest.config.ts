import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
	test: {
		projects: [
			{
				// Inside workerd: the Worker, the Durable Object and the pure modules.
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							// A 2 s interval keeps waits in Worker tests short; object tests step a fake clock.
							bindings: {
								MAX_CONCURRENCY: "4",
								IDENTIFY_INTERVAL_MS: "2000",
								MAX_WAITERS_PER_QUEUE: "50",
								DISCORD_API_URL: "https://discord.test/api/v10",
							},
						},
					}),
				],
				test: { name: "workers", include: ["test/**/*.test.ts"] },
			},
			{
				// On Node.js: clients and end-to-end tests against `wrangler dev` or `npm run serve` on a free port.
				// One file at a time: each starts its own servers.
				// hookTimeout above startDevServer's own 90 s start deadline, so a slow start is stopped by it, not orphaned.
				test: {
					name: "node",
					include: ["test-node/**/*.test.ts"],
					environment: "node",
					testTimeout: 120_000,
					fileParallelism: false,
					hookTimeout: 120_000,
				},
			},
		],
	},
});
