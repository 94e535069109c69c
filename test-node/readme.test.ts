import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";

const root = join(import.meta.dirname, "..");

test("each file of examples/, and each adapter shown, appears in README.md as a whole code block, so README shows what was checked", async () => {
	const readme = await readFile(join(root, "README.md"), "utf8");
	const examples = (await readdir(join(root, "examples"))).map((name) => join("examples", name));
	expect(examples).toContain(join("examples", "discord-js.ts"));
	const adapters = [join("packages", "client", "src", "discordeno.ts"), join("clients", "python", "gateway_queue.py")];
	for (const file of [...examples, ...adapters]) {
		const text = (await readFile(join(root, file), "utf8")).trimEnd();
		expect(readme, file).toContain(`\n${text}\n\`\`\`\n`);
	}
});
