import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { expect, test } from "vitest";

const root = join(import.meta.dirname, "..");
const read = (file: string) => readFile(join(root, file), "utf8");
const docsPages = async () =>
	(await readdir(join(root, "docs"))).filter((name) => name.endsWith(".md")).map((name) => join("docs", name));

/** Where each checked file is shown whole: the page a reader looks for it on. */
async function shownFiles(): Promise<Map<string, string>> {
	const shown = new Map<string, string>();
	for (const name of await readdir(join(root, "examples"))) {
		shown.set(join("examples", name), join("docs", name.endsWith(".service") ? "operations.md" : "clients.md"));
	}
	shown.set(join("packages", "client", "src", "discordeno.ts"), join("docs", "clients.md"));
	shown.set(join("clients", "python", "gateway_queue.py"), join("docs", "clients.md"));
	return shown;
}

const wholeBlock = (text: string) => `\n${text.trimEnd()}\n\`\`\`\n`;

test("each file of examples/, and each adapter shown, appears in the docs as a whole code block, so the docs show what was checked", async () => {
	const shown = await shownFiles();
	expect([...shown.keys()]).toContain(join("examples", "discord-js.ts"));
	for (const [file, page] of shown) {
		expect(await read(page), `${file} in ${page}`).toContain(wholeBlock(await read(file)));
	}
});

test("each TypeScript or Python block of README.md is a whole file of examples/", async () => {
	const readme = await read("README.md");
	const examples = await Promise.all(
		(await readdir(join(root, "examples"))).map(async (name) => (await read(join("examples", name))).trimEnd()),
	);
	const blocks = [...readme.matchAll(/^```(ts|js|python)\n([\s\S]*?)\n```$/gm)].map((match) => match[2]);
	expect(blocks.length).toBeGreaterThan(0);
	for (const block of blocks) expect(examples, block?.split("\n")[0]).toContain(block);
});

test("README.md stays a short start (details belong in docs/)", async () => {
	const lines = (await read("README.md")).trimEnd().split("\n").length;
	expect(lines).toBeLessThanOrEqual(250);
});

/** The lines of a Markdown file outside fenced code blocks. */
function proseLines(markdown: string): string[] {
	let inFence = false;
	return markdown.split("\n").filter((line) => {
		if (/^\s*```/.test(line)) {
			inFence = !inFence;
			return false;
		}
		return !inFence;
	});
}

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, each space a `-`; repeats get `-1`, `-2`. */
function anchorsOf(markdown: string): Set<string> {
	const anchors = new Set<string>();
	const seen = new Map<string, number>();
	for (const line of proseLines(markdown)) {
		const heading = line.match(/^#{1,6}\s+(.*?)\s*#*\s*$/)?.[1];
		if (heading === undefined) continue;
		const text = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, "$1");
		const slug = text
			.toLowerCase()
			.replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, "")
			.replace(/\s/g, "-");
		const count = seen.get(slug) ?? 0;
		seen.set(slug, count + 1);
		anchors.add(count === 0 ? slug : `${slug}-${count}`);
	}
	return anchors;
}

/** Every link target of a Markdown file's prose: `[text](target)`, `![alt](target)`, `<img src="target">`. */
function linksOf(markdown: string): string[] {
	const prose = proseLines(markdown)
		.join("\n")
		.replace(/`[^`\n]*`/g, "");
	return [
		...[...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1] ?? ""),
		...[...prose.matchAll(/<img\s[^>]*src="([^"]+)"/g)].map((match) => match[1] ?? ""),
	];
}

test("every relative link of README.md and docs/*.md reaches an existing file, and heading when it names one", async () => {
	const broken: string[] = [];
	for (const page of ["README.md", ...(await docsPages())]) {
		for (const link of linksOf(await read(page))) {
			if (/^[a-z][a-z+.-]*:/i.test(link)) continue; // https:, mailto:: not checked here
			const [path = "", anchor] = link.split("#", 2);
			const target = path === "" ? join(root, page) : join(root, dirname(page), decodeURIComponent(path));
			if (!existsSync(target)) {
				broken.push(`${page}: ${link} (no ${relative(root, target)})`);
				continue;
			}
			if (anchor === undefined || !target.endsWith(".md")) continue;
			if (!anchorsOf(await readFile(target, "utf8")).has(anchor)) {
				broken.push(`${page}: ${link} (no heading #${anchor} in ${relative(root, target)})`);
			}
		}
	}
	expect(broken).toEqual([]);
});

test("the anchors are GitHub's", () => {
	const anchors = anchorsOf(
		[
			"# Which bot, which `max_concurrency`",
			"## Refusals only for clients that ask: `Gateway-Queue-Refusals: json`",
			"## TypeScript / JavaScript: `gateway-queue-client`",
			"## Logs",
			"```sh",
			"# a comment, not a heading",
			"```",
			"### Logs",
		].join("\n"),
	);
	expect([...anchors]).toEqual([
		"which-bot-which-max_concurrency",
		"refusals-only-for-clients-that-ask-gateway-queue-refusals-json",
		"typescript--javascript-gateway-queue-client",
		"logs",
		"logs-1",
	]);
});
