/**
 * Headless Chromium for the dashboard's browser test and screenshot: `CHROMIUM_PATH`, or Debian's
 * `chromium` package (`.ci/run` installs it), driven by playwright-core, which downloads no
 * browser of its own.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const howToGetChromium =
	"apt-get install chromium (Debian, Ubuntu), or set CHROMIUM_PATH to a Chromium or Chrome";

/** `CHROMIUM_PATH` if it exists, else the first of the usual places that does. */
export function findChromium(): string | undefined {
	const candidates =
		process.env.CHROMIUM_PATH !== undefined
			? [process.env.CHROMIUM_PATH]
			: ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"];
	return candidates.find((path) => path !== "" && existsSync(path));
}

export async function launchChromium(executablePath = findChromium()): Promise<Browser> {
	if (executablePath === undefined) throw new Error(`no Chromium found: ${howToGetChromium}`);
	return chromium.launch({
		executablePath,
		args: [
			"--headless",
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
		],
	});
}
