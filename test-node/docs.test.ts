import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generatedTables, withTable } from "../scripts/docs.ts";

describe("the docs' tables from the code's lists", () => {
	it.each(generatedTables())("$file's $marker table is what npm run docs writes", async ({ file, marker, table }) => {
		const text = await readFile(join(import.meta.dirname, "..", file), "utf8");
		expect(withTable(text, marker, table)).toBe(text);
	});
});
