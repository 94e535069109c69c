import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";

const root = join(import.meta.dirname, "..");

test("each file of examples/ appears in README.md as a whole code block, so README shows what was checked", async () => {
	const readme = await readFile(join(root, "README.md"), "utf8");
	const examples = await readdir(join(root, "examples"));
	expect(examples).toContain("discord-js.ts");
	for (const example of examples) {
		const text = (await readFile(join(root, "examples", example), "utf8")).trimEnd();
		expect(readme, example).toContain(`\n${text}\n\`\`\`\n`);
	}
});
