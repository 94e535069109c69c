/**
 * `npm run docs`: writes the tables the docs derive from the code's lists, the
 * settings (docs/configuration.md) and the errors (docs/contract.md), between
 * their `<!-- name:start -->` and `<!-- name:end -->` markers. With `--check`,
 * writes nothing and fails when a table is out of date.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { settings } from "../src/config/settings.ts";
import { errors } from "../src/edge/errors.ts";

const root = join(import.meta.dirname, "..");

export interface GeneratedTable {
	file: string;
	marker: string;
	table: string;
}

const row = (cells: string[]) => `| ${cells.join(" | ")} |`;

export function generatedTables(): GeneratedTable[] {
	const settingRows = Object.values(settings).map((setting) =>
		row([`\`${setting.name}\``, setting.kind, "default" in setting ? `\`${setting.default}\`` : "unset", setting.doc]),
	);
	const errorRows = Object.entries(errors).map(([code, { status, when }]) =>
		row([String(status), `\`${code}\``, when]),
	);
	return [
		{
			file: "docs/configuration.md",
			marker: "settings",
			table: [row(["Name", "Kind", "Default", "Meaning"]), row(["---", "---", "---", "---"]), ...settingRows].join(
				"\n",
			),
		},
		{
			file: "docs/contract.md",
			marker: "errors",
			table: [row(["Status", "`error`", "When"]), row(["---", "---", "---"]), ...errorRows].join("\n"),
		},
	];
}

/** `text` with the section between the markers replaced by `table`. */
export function withTable(text: string, marker: string, table: string): string {
	const start = `<!-- ${marker}:start -->`;
	const end = `<!-- ${marker}:end -->`;
	const from = text.indexOf(start);
	const to = text.indexOf(end);
	if (from === -1 || to < from) throw new Error(`no ${start} ... ${end} section`);
	return `${text.slice(0, from + start.length)}\n${table}\n${text.slice(to)}`;
}

if (import.meta.main) {
	const check = process.argv.includes("--check");
	const stale: string[] = [];
	for (const { file, marker, table } of generatedTables()) {
		const path = join(root, file);
		const text = await readFile(path, "utf8");
		const updated = withTable(text, marker, table);
		if (updated === text) continue;
		stale.push(file);
		if (!check) await writeFile(path, updated);
	}
	if (check && stale.length > 0) {
		console.error(`out of date: ${stale.join(", ")}; run npm run docs`);
		process.exit(1);
	}
	if (!check) console.log(stale.length > 0 ? `updated ${stale.join(", ")}` : "up to date");
}
