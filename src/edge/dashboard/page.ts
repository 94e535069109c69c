/**
 * The live dashboard of one queue: a page with inline CSS and script and nothing
 * else, so it works where only the Worker is reachable. It holds no queue data:
 * its script (`script.browser.js`, inlined as its text) reads `GET /_/queues/{queue}`
 * once a second and draws it.
 *
 * Credentials: the page sends what its URL fragment names, as a header of each
 * status read: `#token=<bot token>` becomes `Authorization: Bot <token>`;
 * with `#secret=<QUEUE_SECRET>` too, `Authorization: Bearer <secret>` and
 * `X-Bot-Token: <token>`. A fragment never leaves the browser (not in requests,
 * logs or Referer).
 */
import { html, raw } from "hono/html";
import script from "./script.browser.js";

/** Nothing loads from elsewhere, and the page only talks to its own origin. */
export const dashboardHeaders = {
	"content-security-policy":
		"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
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
