/**
 * Headless Chromium for the dashboard's browser test and screenshot: Debian's
 * `chromium` package (`.ci/run` installs it), driven by playwright-core, which
 * downloads no browser of its own.
 */
import { type Browser, chromium } from "playwright-core";

export const chromiumPath = "/usr/bin/chromium";

export async function launchChromium(): Promise<Browser> {
	return chromium.launch({
		executablePath: chromiumPath,
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
