import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
	test: {
		// Log lines (the Worker's JSON lines, a test's prints) only of the tests that fail; a test that
		// asserts on them spies on `console` and sees them all.
		silent: "passed-only",
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
				// Every `vi.spyOn` (the faked Discord `fetch`, console spies) is restored before each test.
				test: { name: "workers", include: ["test/**/*.test.ts"], restoreMocks: true, unstubGlobals: true },
			},
			{
				// On Node.js: clients and end-to-end tests against `wrangler dev` or `npm run serve` on a free port.
				// One file at a time: each starts its own servers.
				// hookTimeout above startDevServer's own 90 s start deadline, so a slow start is stopped by it, not orphaned.
				test: {
					name: "node",
					include: ["test-node/**/*.test.ts"],
					environment: "node",
					restoreMocks: true,
					unstubGlobals: true,
					testTimeout: 120_000,
					fileParallelism: false,
					hookTimeout: 120_000,
				},
			},
		],
	},
});
