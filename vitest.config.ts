import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
	plugins: [
		cloudflareTest({
			wrangler: { configPath: "./wrangler.toml" },
			miniflare: {
				// A 1 s interval keeps waits in Worker tests short; object tests step a fake clock.
				bindings: { IDENTIFY_INTERVAL_MS: "1000", DISCORD_API_URL: "https://discord.test/api/v10" },
			},
		}),
	],
	test: { include: ["test/**/*.test.ts"] },
});
