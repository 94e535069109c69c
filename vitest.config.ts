import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
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
	test: { include: ["test/**/*.test.ts"] },
});
