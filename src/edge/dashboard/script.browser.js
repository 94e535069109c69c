// @ts-check
// The dashboard's script: plain browser JavaScript, inlined in the page as it is in this file
// (a Text module, wrangler.toml's [[rules]]); typechecked from its JSDoc by tsconfig.browser.json.
// It writes text only (no innerHTML).
/** @import { QueueStatusReply as QueueStatus } from "../replies" */
/** @typedef {{ error?: string; message?: string }} ErrorBody */

// biome-ignore lint/suspicious/noRedundantUseStrict: a classic script, not a module: strict only when it says so.
"use strict";

/**
 * @template T
 * @param {T | null | undefined} value
 * @param {string} what
 * @returns {T}
 */
function present(value, what) {
	if (value === null || value === undefined) throw new Error(`the page has no ${what}`);
	return value;
}

const statusUrl = present(document.body.dataset.statusUrl, "status URL");
const fragment = new URLSearchParams(location.hash.slice(1));
/** @type {Record<string, string>} */
const headers = {};
const [secret, token] = [fragment.get("secret"), fragment.get("token")];
if (secret) {
	headers.authorization = `Bearer ${secret}`;
	if (token) headers["x-bot-token"] = token;
} else if (token) {
	headers.authorization = `Bot ${token}`;
}
const windowMs = 5 * 60000;
/** @type {QueueStatus | null} */
let status = null;
let offsetMs = 0; // server clock minus this browser's clock
/** @param {string} id */
const $ = (id) => present(document.getElementById(id), `#${id}`);
const serverNow = () => Date.now() + offsetMs;
/** @param {number} bucket */
const hue = (bucket) => (bucket * 137.508) % 360;

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [text]
 * @param {string} [className]
 */
function el(tag, text, className) {
	const node = document.createElement(tag);
	if (text !== undefined) node.textContent = text;
	if (className) node.className = className;
	return node;
}

/** @param {number} ms */
function duration(ms) {
	const s = Math.max(0, Math.round(ms / 1000));
	if (s < 60) return `${s} s`;
	const m = Math.floor(s / 60);
	if (m < 60) return `${m} min ${s % 60} s`;
	return `${Math.floor(m / 60)} h ${m % 60} min`;
}
/** @param {number} ms */
const clockTime = (ms) => new Date(ms - offsetMs).toLocaleTimeString();
/** @type {Record<string, string>} */
const totalLabels = { budget_reserve_reached: "at reserve" };
/** @type {Record<string, string>} */
const sources = {
	discord: "from Discord",
	var: "from MAX_CONCURRENCY",
	fallback: "fallback: Discord unreachable",
	unknown: "not learnt yet",
};

/** @param {QueueStatus} s */
function render(s) {
	const source = sources[s.concurrency_source] || s.concurrency_source;
	$("config").textContent =
		`max_concurrency ${s.max_concurrency} (${source}) · interval ${s.interval_ms / 1000} s · updated ${clockTime(s.now)}`;
	const warnings = $("warnings");
	warnings.replaceChildren(...(s.warnings || []).map((warning) => el("li", `Warning: ${warning}`)));
	warnings.hidden = warnings.childElementCount === 0;
	$("waiting").textContent = String(s.waiting);
	$("waiting-buckets").textContent =
		`${s.buckets.length} ${s.buckets.length === 1 ? "bucket" : "buckets"} with waiting shards`;
	$("finish-at").textContent =
		s.estimated_finish_at === null ? "nobody waits" : `at ${clockTime(s.estimated_finish_at)}`;

	const totals = $("totals");
	totals.replaceChildren();
	for (const [name, count] of Object.entries(s.totals)) {
		totals.append(el("dt", totalLabels[name] || name.replaceAll("_", " ")), el("dd", String(count)));
	}

	const budget = $("budget");
	budget.replaceChildren();
	if (s.budget && typeof s.budget === "object") {
		const b = s.budget;
		const gauge = el("div", undefined, b.remaining <= b.reserve ? "gauge low" : "gauge");
		gauge.setAttribute("role", "meter");
		gauge.setAttribute("aria-valuemin", "0");
		gauge.setAttribute("aria-valuemax", String(b.total));
		gauge.setAttribute("aria-valuenow", String(b.remaining));
		const fill = el("div", undefined, "fill");
		fill.style.width = `${(100 * b.remaining) / Math.max(1, b.total)}%`;
		const reserve = el("div", undefined, "reserve");
		reserve.style.left = `${(100 * b.reserve) / Math.max(1, b.total)}%`;
		gauge.append(fill, reserve);
		budget.append(
			el("p", `${b.remaining} of ${b.total} left`, "big"),
			gauge,
			el("p", `reserve ${b.reserve} · resets in ${duration(b.reset_at - s.now)}`, "muted"),
		);
		if (s.held_by_budget) {
			budget.append(el("p", "At the reserve: waiting shards are held until starts come back.", "problem"));
		}
	} else {
		budget.append(el("p", "No daily budget known for this queue.", "muted"));
	}

	const timeline = $("timeline");
	timeline.replaceChildren();
	const lanes = Math.max(1, s.max_concurrency);
	const laneHeight = Math.max(2, 100 / lanes);
	for (const grant of s.recent_grants) {
		const mark = el("span");
		mark.title = `shard ${grant.shard === null ? "–" : grant.shard}, bucket ${grant.bucket} at ${clockTime(grant.at)}`;
		mark.style.left = `calc(${(100 * (grant.at - (s.now - windowMs))) / windowMs}% - 3px)`;
		mark.style.top = `${((grant.bucket % lanes) * 100) / lanes}%`;
		mark.style.height = `${laneHeight}%`;
		mark.style.background = `hsl(${hue(grant.bucket)} 70% 55%)`;
		timeline.append(mark);
	}
	const recent = $("recent");
	recent.replaceChildren();
	for (const grant of s.recent_grants.slice(-12).reverse()) {
		const shard = grant.shard === null ? "–" : grant.shard;
		recent.append(el("li", `${clockTime(grant.at)} · shard ${shard} · bucket ${grant.bucket}`));
	}

	$("idle").hidden = s.buckets.length > 0;
	const untouched = s.concurrency_source === "unknown" && s.totals.granted === 0 && !fragment.get("token");
	$("idle").textContent = untouched
		? "Nobody is waiting. For a bot's own queue, add #token=<bot token> to this page's address: the part after # stays in the browser, which sends the token as a header."
		: "Nobody is waiting.";
	$("buckets").hidden = s.buckets.length === 0;
	const body = present($("buckets").querySelector("tbody"), "#buckets tbody");
	body.replaceChildren();
	for (const line of s.buckets) {
		const row = el("tr");
		row.dataset.bucket = String(line.bucket);
		const listed = line.shards.map((shard) => (shard === null ? "–" : String(shard))).slice(0, 24);
		const more = line.waiting - listed.length;
		const next = el("td", "", "next");
		next.dataset.at = String(line.next_grant_at);
		row.append(
			el("td", String(line.bucket), "bucket"),
			el("td", String(line.waiting), "waiting"),
			next,
			el("td", more > 0 ? `${listed.join(", ")} … +${more} more` : listed.join(", "), "shards"),
			el("td", line.last_grant_at === null ? "never" : clockTime(line.last_grant_at), "wide"),
		);
		body.append(row);
	}
	tick();
}

// Countdowns move between two reads of the status.
function tick() {
	if (!status) return;
	const now = serverNow();
	for (const cell of document.querySelectorAll("td.next")) {
		if (!(cell instanceof HTMLElement)) continue;
		const inMs = Number(cell.dataset.at) - now;
		cell.textContent = inMs <= 0 ? "now" : `in ${(inMs / 1000).toFixed(1)} s`;
	}
	$("finish").textContent =
		status.estimated_finish_at === null ? "–" : `in ${duration(status.estimated_finish_at - now)}`;
}

async function poll() {
	try {
		const response = await fetch(statusUrl, { headers, cache: "no-store" });
		/** @type {unknown} */
		const body = await response.json();
		if (!response.ok) {
			const problem = /** @type {ErrorBody} */ (body);
			throw new Error(`${response.status} ${problem.error || ""}: ${problem.message || ""}`);
		}
		const read = /** @type {QueueStatus} */ (body);
		offsetMs = read.now - Date.now();
		status = read;
		$("problem").hidden = true;
		render(read);
	} catch (error) {
		$("problem").hidden = false;
		const message = error instanceof Error ? error.message : String(error);
		$("problem").textContent = `Cannot read the queue's status: ${message}`;
	} finally {
		setTimeout(poll, 1000);
	}
}

setInterval(tick, 200);
poll();
