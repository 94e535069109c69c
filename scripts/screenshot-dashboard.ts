/**
 * Draws docs/dashboard.png (desktop, dark) and docs/dashboard-phone.png (phone,
 * light): `wrangler dev` with a local stand-in for Discord (max_concurrency 4),
 * 48 shards of one bot asking at once, and the dashboard after a few rounds of
 * grants at the default 5.5 s interval.
 *
 *   npm run screenshot
 */
import { join } from "node:path";
import { launchChromium } from "../tools/browser.ts";
import { startDevServer } from "../tools/dev-server.ts";
import { startFakeDiscord } from "../tools/fake-discord.ts";
import { Resources } from "../tools/resources.ts";

const shards = 48;
const watchMs = 23_000;
const token = "screenshot.token";
const docs = join(import.meta.dirname, "..", "docs");

const resources = new Resources();
const requests = new AbortController();
try {
	const discord = await resources.start({
		start: () => startFakeDiscord({ maxConcurrency: 4, remaining: 874 }),
		stop: (d) => d.close(),
	});
	const server = await resources.start({
		start: () => startDevServer({ DISCORD_API_URL: discord.apiUrl }),
		stop: (s) => s.stop(),
	});
	const browser = await resources.start({ start: () => launchChromium(), stop: (b) => b.close() });
	const headers = { authorization: `Bot ${token}` };
	// Shards start in order, as a sharding library starts them.
	for (let shard = 0; shard < shards; shard++) {
		fetch(`${server.url}/mybot?shard=${shard}`, { headers, signal: requests.signal }).catch(() => {});
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
	await new Promise((resolve) => setTimeout(resolve, watchMs));
	const url = `${server.url}/_/dashboard/mybot#token=${token}`;

	const desktop = await browser.newPage({ viewport: { width: 1100, height: 680 }, colorScheme: "dark" });
	await desktop.goto(url);
	await desktop.waitForSelector("#buckets tbody tr");
	await desktop.screenshot({ path: join(docs, "dashboard.png"), fullPage: true });

	const phone = await browser.newPage({
		viewport: { width: 390, height: 844 },
		deviceScaleFactor: 2,
		isMobile: true,
		colorScheme: "light",
	});
	await phone.goto(url);
	await phone.waitForSelector("#buckets tbody tr");
	await phone.screenshot({ path: join(docs, "dashboard-phone.png"), fullPage: true });
	console.log(`wrote ${join(docs, "dashboard.png")} and ${join(docs, "dashboard-phone.png")}`);
} finally {
	requests.abort();
	await resources.stopAll();
}
