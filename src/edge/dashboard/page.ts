/**
 * The live dashboard of one queue: a page with inline CSS and script and nothing
 * else, so it works where only the Worker is reachable. It holds no queue data:
 * its script reads `GET /_/queues/{queue}` once a second and draws it.
 *
 * Credentials: the page sends what its URL fragment names, as a header of each
 * status read: `#token=<bot token>` becomes `Authorization: Bot <token>`;
 * with `#secret=<QUEUE_SECRET>` too, `Authorization: Bearer <secret>` and
 * `X-Bot-Token: <token>`. A fragment never leaves the browser (not in requests,
 * logs or Referer).
 */
import { html, raw } from "hono/html";

/** Nothing loads from elsewhere, and the page only talks to its own origin. */
export const dashboardHeaders = {
	"content-security-policy":
		"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"cache-control": "no-store",
	"referrer-policy": "no-referrer",
};

export function dashboardPage(queue: string) {
	return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${queue} · gateway queue</title>
<style>${raw(css)}</style>
</head>
<body data-status-url="/_/queues/${queue}">
<header>
	<h1>Queue <code>${queue}</code></h1>
	<p id="config" class="muted">Loading…</p>
	<p id="problem" class="problem" hidden></p>
	<ul id="warnings" class="problem" hidden></ul>
</header>
<main>
	<section class="cards">
		<div class="card"><h2>Waiting</h2><p class="big" id="waiting">–</p><p class="muted" id="waiting-buckets"></p></div>
		<div class="card"><h2>Estimated finish</h2><p class="big" id="finish">–</p><p class="muted" id="finish-at"></p></div>
		<div class="card"><h2>Since start</h2><dl id="totals"></dl></div>
		<div class="card"><h2>Daily budget</h2><div id="budget"></div></div>
	</section>
	<section>
		<h2>Waiting buckets</h2>
		<p class="muted" id="idle">Nobody is waiting.</p>
		<table id="buckets" hidden>
			<thead><tr><th>Bucket</th><th>Waiting</th><th>Next grant</th><th>Shards in line</th><th class="wide">Last grant</th></tr></thead>
			<tbody></tbody>
		</table>
	</section>
	<section>
		<h2>Grants, last 5 minutes</h2>
		<div class="timeline" id="timeline" role="img" aria-label="Recent grants by time and bucket"></div>
		<div class="axis muted"><span>−5 min</span><span>−2.5 min</span><span>now</span></div>
		<ol class="recent" id="recent"></ol>
	</section>
</main>
<script>${raw(script)}</script>
</body>
</html>`;
}

const css = `
:root { --bg: #f7f7f9; --fg: #1b1d22; --muted: #5f6673; --card: #fff; --line: #dde0e6; --accent: #3b5bdb; --warn: #c92a2a; --ok: #2b8a3e; }
@media (prefers-color-scheme: dark) {
	:root { --bg: #111318; --fg: #e6e8ee; --muted: #9aa1ad; --card: #1b1e25; --line: #2c313b; --accent: #7b96ff; --warn: #ff6b6b; --ok: #69db7c; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem; background: var(--bg); color: var(--fg); font: 15px/1.4 system-ui, sans-serif; }
header, main { max-width: 64rem; margin: 0 auto; }
header { margin-bottom: .75rem; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; overflow-wrap: anywhere; }
h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 1.2rem 0 .4rem; }
.card h2 { margin-top: 0; }
.muted { color: var(--muted); margin: .2rem 0; }
.problem { color: var(--warn); font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .75rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .75rem; }
.big { font-size: 1.8rem; font-weight: 650; margin: 0; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: auto auto; gap: .1rem 1rem; margin: 0; font-variant-numeric: tabular-nums; }
dt { color: var(--muted); } dd { margin: 0; text-align: right; }
.gauge { position: relative; height: .9rem; border-radius: .45rem; background: var(--line); overflow: hidden; margin: .4rem 0; }
.gauge .fill { position: absolute; inset: 0 auto 0 0; background: var(--ok); }
.gauge.low .fill { background: var(--warn); }
.gauge .reserve { position: absolute; top: 0; bottom: 0; width: 2px; background: var(--fg); }
.timeline { position: relative; height: 4rem; background: var(--card); border: 1px solid var(--line); border-radius: .5rem; overflow: hidden; }
.timeline span { position: absolute; width: 3px; border-radius: 1px; }
.axis { display: flex; justify-content: space-between; font-size: .75rem; }
.recent { list-style: none; padding: 0; margin: .4rem 0 0; display: flex; flex-wrap: wrap; gap: .3rem; font-size: .8rem; font-variant-numeric: tabular-nums; }
.recent li { background: var(--card); border: 1px solid var(--line); border-radius: 1rem; padding: .05rem .55rem; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: .5rem; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .75rem; color: var(--muted); font-weight: 600; }
td.shards { font-family: ui-monospace, monospace; font-size: .85rem; overflow-wrap: anywhere; }
td.next { color: var(--accent); font-weight: 600; white-space: nowrap; }
@media (max-width: 40rem) {
	body { padding: .6rem; }
	.wide { display: none; }
	th, td { padding: .35rem .4rem; }
	.big { font-size: 1.5rem; }
	.cards { gap: .5rem; }
	.card { padding: .6rem; }
	.recent li:nth-child(n+7) { display: none; }
}
`;

// Plain browser JavaScript, sent as is: no build step. It writes text only (no innerHTML).
const script = `
"use strict";
const statusUrl = document.body.dataset.statusUrl;
const fragment = new URLSearchParams(location.hash.slice(1));
const headers = {};
const [secret, token] = [fragment.get("secret"), fragment.get("token")];
if (secret) {
	headers.authorization = "Bearer " + secret;
	if (token) headers["x-bot-token"] = token;
} else if (token) {
	headers.authorization = "Bot " + token;
}
const windowMs = 5 * 60000;
let status = null;
let offsetMs = 0; // server clock minus this browser's clock
const $ = (id) => document.getElementById(id);
const serverNow = () => Date.now() + offsetMs;
const hue = (bucket) => (bucket * 137.508) % 360;

function el(tag, text, className) {
	const node = document.createElement(tag);
	if (text !== undefined) node.textContent = text;
	if (className) node.className = className;
	return node;
}

function duration(ms) {
	const s = Math.max(0, Math.round(ms / 1000));
	if (s < 60) return s + " s";
	const m = Math.floor(s / 60);
	if (m < 60) return m + " min " + (s % 60) + " s";
	return Math.floor(m / 60) + " h " + (m % 60) + " min";
}
const clockTime = (ms) => new Date(ms - offsetMs).toLocaleTimeString();
const totalLabels = { budget_reserve_reached: "at reserve" };
const sources = { discord: "from Discord", var: "from MAX_CONCURRENCY", fallback: "fallback: Discord unreachable", unknown: "not learnt yet" };

function render() {
	const s = status;
	$("config").textContent = "max_concurrency " + s.max_concurrency + " (" + (sources[s.concurrency_source] || s.concurrency_source) +
		") · interval " + s.interval_ms / 1000 + " s · updated " + clockTime(s.now);
	const warnings = $("warnings");
	warnings.replaceChildren(...(s.warnings || []).map((warning) => el("li", "Warning: " + warning)));
	warnings.hidden = warnings.childElementCount === 0;
	$("waiting").textContent = String(s.waiting);
	$("waiting-buckets").textContent = s.buckets.length + (s.buckets.length === 1 ? " bucket" : " buckets") + " with waiting shards";
	$("finish-at").textContent = s.estimated_finish_at === null ? "nobody waits" : "at " + clockTime(s.estimated_finish_at);

	const totals = $("totals");
	totals.replaceChildren();
	for (const [name, count] of Object.entries(s.totals)) {
		totals.append(el("dt", totalLabels[name] || name.replaceAll("_", " ")), el("dd", String(count)));
	}

	const budget = $("budget");
	budget.replaceChildren();
	if (s.budget && typeof s.budget === "object") {
		const b = s.budget;
		const gauge = el("div", undefined, "gauge" + (b.remaining <= b.reserve ? " low" : ""));
		gauge.setAttribute("role", "meter");
		gauge.setAttribute("aria-valuemin", "0");
		gauge.setAttribute("aria-valuemax", String(b.total));
		gauge.setAttribute("aria-valuenow", String(b.remaining));
		const fill = el("div", undefined, "fill");
		fill.style.width = (100 * b.remaining / Math.max(1, b.total)) + "%";
		const reserve = el("div", undefined, "reserve");
		reserve.style.left = (100 * b.reserve / Math.max(1, b.total)) + "%";
		gauge.append(fill, reserve);
		budget.append(el("p", b.remaining + " of " + b.total + " left", "big"), gauge,
			el("p", "reserve " + b.reserve + " · resets in " + duration(b.reset_at - s.now), "muted"));
		if (s.held_by_budget) budget.append(el("p", "At the reserve: waiting shards are held until starts come back.", "problem"));
	} else {
		budget.append(el("p", "No daily budget known for this queue.", "muted"));
	}

	const timeline = $("timeline");
	timeline.replaceChildren();
	const lanes = Math.max(1, s.max_concurrency);
	const laneHeight = Math.max(2, 100 / lanes);
	for (const grant of s.recent_grants) {
		const mark = el("span");
		mark.title = "shard " + (grant.shard === null ? "–" : grant.shard) + ", bucket " + grant.bucket + " at " + clockTime(grant.at);
		mark.style.left = "calc(" + (100 * (grant.at - (s.now - windowMs)) / windowMs) + "% - 3px)";
		mark.style.top = ((grant.bucket % lanes) * 100 / lanes) + "%";
		mark.style.height = laneHeight + "%";
		mark.style.background = "hsl(" + hue(grant.bucket) + " 70% 55%)";
		timeline.append(mark);
	}
	const recent = $("recent");
	recent.replaceChildren();
	for (const grant of s.recent_grants.slice(-12).reverse()) {
		recent.append(el("li", clockTime(grant.at) + " · shard " + (grant.shard === null ? "–" : grant.shard) + " · bucket " + grant.bucket));
	}

	$("idle").hidden = s.buckets.length > 0;
	const untouched = s.concurrency_source === "unknown" && s.totals.granted === 0 && !fragment.get("token");
	$("idle").textContent = "Nobody is waiting." + (untouched
		? " For a bot's own queue, add #token=<bot token> to this page's address: the part after # stays in the browser, which sends the token as a header."
		: "");
	$("buckets").hidden = s.buckets.length === 0;
	const body = $("buckets").tBodies[0];
	body.replaceChildren();
	for (const line of s.buckets) {
		const row = el("tr");
		row.dataset.bucket = String(line.bucket);
		const listed = line.shards.map((shard) => (shard === null ? "–" : String(shard))).slice(0, 24);
		const more = line.waiting - listed.length;
		const next = el("td", "", "next");
		next.dataset.at = String(line.next_grant_at);
		row.append(el("td", String(line.bucket), "bucket"), el("td", String(line.waiting), "waiting"), next,
			el("td", listed.join(", ") + (more > 0 ? " … +" + more + " more" : ""), "shards"),
			el("td", line.last_grant_at === null ? "never" : clockTime(line.last_grant_at), "wide"));
		body.append(row);
	}
	tick();
}

// Countdowns move between two reads of the status.
function tick() {
	if (!status) return;
	const now = serverNow();
	for (const cell of document.querySelectorAll("td.next")) {
		const inMs = Number(cell.dataset.at) - now;
		cell.textContent = inMs <= 0 ? "now" : "in " + (inMs / 1000).toFixed(1) + " s";
	}
	$("finish").textContent = status.estimated_finish_at === null ? "–" : "in " + duration(status.estimated_finish_at - now);
}

async function poll() {
	try {
		const response = await fetch(statusUrl, { headers, cache: "no-store" });
		const body = await response.json();
		if (!response.ok) throw new Error(response.status + " " + (body.error || "") + ": " + (body.message || ""));
		offsetMs = body.now - Date.now();
		status = body;
		$("problem").hidden = true;
		render();
	} catch (error) {
		$("problem").hidden = false;
		$("problem").textContent = "Cannot read the queue's status: " + error.message;
	} finally {
		setTimeout(poll, 1000);
	}
}

setInterval(tick, 200);
poll();
`;
