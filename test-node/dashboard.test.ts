import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findChromium, howToGetChromium, launchChromium } from "../tools/browser.ts";
import { type DevServer, startDevServer } from "../tools/dev-server.ts";
import { type FakeDiscord, startFakeDiscord } from "../tools/fake-discord.ts";
import { Resources } from "../tools/resources.ts";
import { requireTool } from "./support/requirements.ts";

// Two buckets, grants 8 s apart: long enough for the page and the status to be compared between two grants.
const intervalMs = 8000;
const token = "dashboard.test-token";
const queue = "dashboard-bot";

/** What this test reads of `GET /_/queues/{queue}`. */
interface QueueStatus {
	waiting: number;
	buckets: { bucket: number; waiting: number; shards: (number | null)[] }[];
	totals: { granted: number };
	recent_grants: unknown[];
}

const chromium = requireTool("Chromium", findChromium(), howToGetChromium);
let discord: FakeDiscord;
let server: DevServer;
let browser: Browser;
const held: AbortController[] = [];
const resources = new Resources();

const botHeaders = { authorization: `Bot ${token}` };

async function statusOf(headers: Record<string, string> = botHeaders): Promise<QueueStatus> {
	const response = await fetch(`${server.url}/_/queues/${queue}`, { headers });
	expect(response.status).toBe(200);
	return (await response.json()) as QueueStatus;
}

/** Sends a queue request that stays open until it is granted or the test ends; returns once the queue has it. */
let sent = 0;
async function hold(shard: number): Promise<void> {
	const controller = new AbortController();
	held.push(controller);
	fetch(`${server.url}/${queue}?shard=${shard}`, { headers: botHeaders, signal: controller.signal }).catch(() => {});
	sent++;
	await expect
		.poll(async () => {
			const status = await statusOf();
			return status.waiting + status.totals.granted;
		})
		.toBe(sent);
}

type Row = { bucket: string; waiting: string; shards: string };

function rowsOf(status: QueueStatus): Row[] {
	return status.buckets.map((line) => ({
		bucket: String(line.bucket),
		waiting: String(line.waiting),
		shards: line.shards.join(", "),
	}));
}

async function rowsOnPage(page: Page): Promise<Row[]> {
	return page.$$eval("#buckets tbody tr", (rows) =>
		rows.map((row) => ({
			bucket: row.querySelector(".bucket")?.textContent ?? "",
			waiting: row.querySelector(".waiting")?.textContent ?? "",
			shards: row.querySelector(".shards")?.textContent ?? "",
		})),
	);
}

/** A whole status of a bot's queue at `nowMs`, as the route answers it, for the page to be given instead. */
function statusAt(nowMs: number, fields: Record<string, unknown>) {
	return {
		queue,
		max_concurrency: 1,
		concurrency_source: "discord",
		interval_ms: intervalMs,
		now: nowMs,
		started_at: nowMs - 60_000,
		waiting: 0,
		buckets: [],
		totals: { granted: 0, superseded: 0, cancelled: 0, overloaded: 0, unauthorized: 0, budget_reserve_reached: 0 },
		recent_grants: [],
		estimated_finish_at: null,
		budget: null,
		held_by_budget: false,
		warnings: [],
		...fields,
	};
}

/** Reads the status route, expects `rows` in it, and waits for the page to show them, with the waiting count. */
async function expectShown(page: Page, rows: Row[]): Promise<QueueStatus> {
	const status = await statusOf();
	expect(rowsOf(status)).toEqual(rows);
	await expect.poll(() => rowsOnPage(page), { timeout: 5000 }).toEqual(rows);
	expect(await page.textContent("#waiting")).toBe(String(status.waiting));
	return status;
}

describe.skipIf(chromium.missing)("the dashboard in headless Chromium", () => {
	beforeAll(async () => {
		discord = await resources.start({ start: () => startFakeDiscord({ maxConcurrency: 2 }), stop: (d) => d.close() });
		[server, browser] = await resources.startAll<[DevServer, Browser]>([
			{
				start: () => startDevServer({ IDENTIFY_INTERVAL_MS: String(intervalMs), DISCORD_API_URL: discord.apiUrl }),
				stop: (started) => started.stop(),
			},
			{ start: () => launchChromium(chromium.path), stop: (started) => started.close() },
		]);
	}, 120_000);
	afterAll(async () => {
		for (const controller of held) controller.abort();
		await resources.stopAll();
	}, 30_000);

	test("shows the waiting buckets of a bot's queue as the status route does, and follows a grant", async () => {
		// Shards 0 and 1 are granted at once; 2, 4, 6 wait in bucket 0 and 3, 5 in bucket 1.
		const page = await browser.newPage();
		// Anything the page's Content-Security-Policy refuses, or a script error; and any request off the
		// service's routes (a /favicon.ico would be a request to a queue named favicon.ico).
		const problems: string[] = [];
		page.on("console", (message) => {
			if (message.type() === "error") problems.push(message.text());
		});
		page.on("pageerror", (error) => problems.push(error.message));
		page.on("request", (request) => {
			if (!new URL(request.url()).pathname.startsWith("/_/")) problems.push(`requested ${request.url()}`);
		});
		await page.goto(`${server.url}/_/dashboard/${queue}#token=${token}`);
		for (const shard of [0, 1, 2, 3, 4, 5, 6]) await hold(shard);

		const before = await expectShown(page, [
			{ bucket: "0", waiting: "3", shards: "2, 4, 6" },
			{ bucket: "1", waiting: "2", shards: "3, 5" },
		]);
		expect(before.waiting).toBe(5);
		expect(await page.textContent("#budget")).toMatch(/\d+ of 1000 left/);
		expect(await page.textContent("#config")).toContain("max_concurrency 2 (from Discord)");
		expect(await page.$$eval("td.next", (cells) => cells.map((cell) => cell.textContent))).toEqual([
			expect.stringMatching(/^(in \d+\.\d s|now)$/),
			expect.stringMatching(/^(in \d+\.\d s|now)$/),
		]);
		expect(await page.locator("#timeline span").count()).toBe(before.recent_grants.length);

		await expect.poll(async () => (await statusOf()).totals.granted, { timeout: 2 * intervalMs }).toBe(4);
		const after = await expectShown(page, [
			{ bucket: "0", waiting: "2", shards: "4, 6" },
			{ bucket: "1", waiting: "1", shards: "5" },
		]);
		expect(after.waiting).toBe(3);
		expect(await page.locator("#timeline span").count()).toBe(4);
		expect(problems).toEqual([]);
		await page.close();
	});

	test("draws a known budget as a gauge, fits a phone, and follows dark mode", async () => {
		const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, colorScheme: "dark" });
		const nowMs = Date.now();
		const status = statusAt(nowMs, {
			max_concurrency: 16,
			interval_ms: 5500,
			waiting: 40,
			buckets: Array.from({ length: 16 }, (_, bucket) => ({
				bucket,
				waiting: bucket < 8 ? 3 : 2,
				shards: [bucket + 1000, bucket + 1016, bucket + 1032].slice(0, bucket < 8 ? 3 : 2),
				last_grant_at: nowMs - 1000,
				next_grant_at: nowMs + 4500,
			})),
			totals: { granted: 1000, superseded: 3, cancelled: 1, overloaded: 0, unauthorized: 0, budget_reserve_reached: 2 },
			recent_grants: [{ at: nowMs - 1000, bucket: 15, shard: 999 }],
			estimated_finish_at: nowMs + 4500 + 2 * 5500,
			budget: { total: 2000, remaining: 873, reserve: 50, reset_at: nowMs + 3_600_000 },
		});
		// A bigger bot than the stand-in Discord reports: the page is given its status.
		await page.route("**/_/queues/**", (route) => route.fulfill({ json: status }));
		await page.goto(`${server.url}/_/dashboard/${queue}`);
		await expect.poll(() => page.locator("#buckets tbody tr").count(), { timeout: 5000 }).toBe(16);
		expect(await page.textContent("#budget")).toContain("873 of 2000 left");
		expect(await page.textContent("#budget")).toContain("reserve 50 · resets in 1 h 0 min");
		expect(await page.textContent("#totals")).toContain("at reserve2");
		expect(await page.getAttribute("#budget [role=meter]", "aria-valuenow")).toBe("873");
		expect(await page.textContent("#finish")).toMatch(/^in 1[45] s$/);
		expect(await page.$eval("html", (root) => root.scrollWidth)).toBeLessThanOrEqual(390);
		const background = await page.$eval(
			"body",
			(body) => body.ownerDocument.defaultView?.getComputedStyle(body).backgroundColor,
		);
		expect(background).toBe("rgb(17, 19, 24)");
		await page.close();
	});

	test("shows the configuration's warnings, and says when the budget's reserve holds the waiting shards", async () => {
		const page = await browser.newPage();
		const nowMs = Date.now();
		const status = statusAt(nowMs, {
			interval_ms: 200,
			waiting: 1,
			buckets: [{ bucket: 0, waiting: 1, shards: [7], last_grant_at: nowMs - 1000, next_grant_at: nowMs }],
			totals: { granted: 95, superseded: 0, cancelled: 0, overloaded: 0, unauthorized: 0, budget_reserve_reached: 0 },
			estimated_finish_at: nowMs,
			budget: { total: 100, remaining: 5, reserve: 5, reset_at: nowMs + 3_600_000 },
			held_by_budget: true,
			warnings: ["IDENTIFY_INTERVAL_MS is 200 ms, below Discord's 5000 ms"],
		});
		await page.route("**/_/queues/**", (route) => route.fulfill({ json: status }));
		await page.goto(`${server.url}/_/dashboard/${queue}`);
		await expect.poll(() => page.textContent("#warnings"), { timeout: 5000 }).toContain("below Discord's 5000 ms");
		expect(await page.isVisible("#warnings")).toBe(true);
		expect(await page.textContent("#budget")).toContain("At the reserve: waiting shards are held");
		await page.close();
	});

	test("without the token in the fragment, the page reads the tokenless queue of that name", async () => {
		const page = await browser.newPage();
		await page.goto(`${server.url}/_/dashboard/${queue}`);
		await expect.poll(() => page.textContent("#config"), { timeout: 5000 }).toContain("max_concurrency");
		expect(await page.textContent("#idle")).toContain("add #token=<bot token>");
		expect(await rowsOnPage(page)).toEqual([]);
		expect((await statusOf({})).waiting).toBe(0);
		await page.close();
	});

	test("with QUEUE_SECRET set, reads a bot's queue with the secret and the token from the fragment", async () => {
		const secret = "dashboard-test-secret-0123456789";
		const guarded = await startDevServer({
			IDENTIFY_INTERVAL_MS: String(intervalMs),
			DISCORD_API_URL: discord.apiUrl,
			QUEUE_SECRET: secret,
		});
		const controller = new AbortController();
		try {
			const headers = { authorization: `Bearer ${secret}`, "x-bot-token": token };
			const send = (shard: number) =>
				fetch(`${guarded.url}/${queue}?shard=${shard}`, { headers, signal: controller.signal }).catch(() => {});
			// In this order: sent together, shard 2 could be granted first and shard 0 wait instead.
			await send(0);
			void send(2);
			const page = await browser.newPage();
			await page.goto(`${guarded.url}/_/dashboard/${queue}#secret=${secret}&token=${token}`);
			await expect
				.poll(() => rowsOnPage(page), { timeout: 10_000 })
				.toEqual([{ bucket: "0", waiting: "1", shards: "2" }]);
			expect(await page.isHidden("#problem")).toBe(true);
			await page.close();
		} finally {
			controller.abort();
			await guarded.stop();
		}
	});
});
