import { type MockInstance, vi } from "vitest";

const methods = ["log", "info", "warn", "error", "debug"] as const;

/** One argument of a console call as text: a string as it is, anything else as `String` and as JSON. */
function textOf(arg: unknown): string {
	if (typeof arg === "string") return arg;
	try {
		return `${String(arg)} ${JSON.stringify(arg)}`;
	} catch {
		return String(arg);
	}
}

export interface CapturedConsole {
	/** Every call so far, one line each. */
	text(): string;
	/** How many calls so far. */
	count(): number;
}

/** Silences and records every console method while a test runs (the queue objects run in the test's isolate). */
export function captureConsole(): CapturedConsole {
	const spies: MockInstance[] = methods.map((method) => vi.spyOn(console, method).mockImplementation(() => {}));
	const calls = () => spies.flatMap((spy) => spy.mock.calls);
	return {
		text: () =>
			calls()
				.map((args) => args.map(textOf).join(" "))
				.join("\n"),
		count: () => calls().length,
	};
}

/** Silences `console.log`, where the Worker and the object write their JSON log lines, and records them. */
export function spyOnLogLines(): MockInstance<typeof console.log> {
	return vi.spyOn(console, "log").mockImplementation(() => {});
}

/** The JSON log lines written with `console.log` so far, parsed. */
export function logLinesOf(logs: MockInstance<typeof console.log>): Record<string, unknown>[] {
	return logs.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
}
