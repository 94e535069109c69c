import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const src = join(import.meta.dirname, "..", "src");

/** What each folder of src/ may import (src/README.md): other folders, `log.ts`, and packages. */
const allowed: Record<string, { folders: string[]; packages: string[]; typeOnly?: string[] }> = {
	edge: { folders: ["edge", "config", "core", "log.ts"], packages: ["hono", "zod"], typeOnly: ["object"] },
	object: { folders: ["object", "config", "core", "discord", "log.ts"], packages: ["cloudflare:workers"] },
	core: { folders: ["core"], packages: [] },
	discord: { folders: ["discord", "core"], packages: ["zod"] },
	config: { folders: ["config", "log.ts"], packages: ["zod"] },
};

async function sourceFiles(folder: string): Promise<string[]> {
	const entries = await readdir(folder, { withFileTypes: true, recursive: true });
	return entries
		.filter((entry) => entry.isFile() && /\.(ts|js)$/.test(entry.name))
		.map((entry) => join(entry.parentPath, entry.name));
}

function importsOf(text: string): { target: string; typeOnly: boolean }[] {
	return [...text.matchAll(/^import\s+(type\s+)?[^"']*?from\s+["']([^"']+)["']/gm)].map((match) => ({
		target: match[2] ?? "",
		typeOnly: match[1] !== undefined,
	}));
}

describe("src/ layers", () => {
	it("imports only what src/README.md allows each folder", async () => {
		const broken: string[] = [];
		for (const [folder, rule] of Object.entries(allowed)) {
			for (const file of await sourceFiles(join(src, folder))) {
				for (const { target, typeOnly } of importsOf(await readFile(file, "utf8"))) {
					const name = relative(src, file);
					if (!target.startsWith(".")) {
						const known = rule.packages.some((pkg) => target === pkg || target.startsWith(`${pkg}/`));
						if (!known) broken.push(`${name} imports the package ${target}`);
						continue;
					}
					const to = relative(src, join(dirname(file), target)).split("/")[0] ?? "";
					const layer = to === "log" ? "log.ts" : to;
					if (rule.folders.includes(layer) || (typeOnly && rule.typeOnly?.includes(layer))) continue;
					broken.push(`${name} imports ${target}${typeOnly ? " (type)" : ""}`);
				}
			}
		}
		expect(broken).toEqual([]);
	});

	it("keeps the pure core free of the clock and of runtime globals", async () => {
		const impure: string[] = [];
		for (const file of await sourceFiles(join(src, "core"))) {
			const text = await readFile(file, "utf8");
			for (const global of ["Date.now", "performance.now", "setTimeout", "fetch(", "crypto.", "console."]) {
				if (text.includes(global)) impure.push(`${relative(src, file)} uses ${global}`);
			}
		}
		expect(impure).toEqual([]);
	});
});
