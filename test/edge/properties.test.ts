import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Pacer, type SavedPlace, type Waiter } from "../../src/core/pacing";
import { readCredentials } from "../../src/edge/auth";
import { ApiError } from "../../src/edge/errors";
import { defaultMaxQueueNameLength, parseQueueName, parseShard } from "../../src/edge/validation";

/** The error code `run` throws, its result wrapped, or a marker for anything that is not an `ApiError`. */
function outcome<T>(run: () => T): { value: T } | { code: string; message: string } {
	try {
		return { value: run() };
	} catch (error) {
		if (error instanceof ApiError) return { code: error.code, message: error.message };
		return { code: `not an ApiError: ${String(error)}`, message: "" };
	}
}

const validName = fc.stringMatching(/^[A-Za-z0-9-][A-Za-z0-9._-]{0,63}$/);
/** Characters that make paths interesting: separators, escapes, dots, unicode. */
const hostileChar = fc.constantFrom(..."/\\%2Ff.._-aZ09 é😀\u0000?#".split(""), "%2e", "%2F", "%00", "%C3%A9");
const hostilePath = fc.oneof(
	fc.string({ unit: "binary", maxLength: 80 }).map((rest) => `/${rest}`),
	fc.array(hostileChar, { maxLength: 40 }).map((chars) => `/${chars.join("")}`),
	fc.webPath(),
	validName.map((name) => `/${name}`),
);

describe("parseQueueName (property)", () => {
	it("reads every valid name, with or without a trailing slash", () => {
		fc.assert(
			fc.property(validName, (name) => {
				expect(parseQueueName(`/${name}`)).toBe(name);
				expect(parseQueueName(`/${name}/`)).toBe(name);
			}),
		);
	});

	it("answers any path with a valid name taken from it verbatim, or invalid_queue_name", () => {
		fc.assert(
			fc.property(hostilePath, (path) => {
				const result = outcome(() => parseQueueName(path));
				if ("code" in result) {
					expect(result.code).toBe("invalid_queue_name");
					return;
				}
				const name = result.value;
				if (path === "/") expect(name).toBe("default");
				else {
					expect([`/${name}`, `/${name}/`]).toContain(path);
					expect(name).toMatch(/^[A-Za-z0-9-][A-Za-z0-9._-]*$/);
					expect(name.length).toBeLessThanOrEqual(defaultMaxQueueNameLength);
				}
			}),
		);
	});

	it("holds names to MAX_QUEUE_NAME_LENGTH, whatever it is", () => {
		fc.assert(
			fc.property(fc.integer({ min: 1, max: 256 }), fc.integer({ min: 1, max: 300 }), (maxLength, length) => {
				const name = "q".repeat(length);
				const result = outcome(() => parseQueueName(`/${name}`, maxLength));
				expect(result).toEqual(
					length <= maxLength ? { value: name } : expect.objectContaining({ code: "invalid_queue_name" }),
				);
			}),
		);
	});
});

describe("parseShard (property)", () => {
	const maxShard = 2 ** 32 - 1;
	const shardOf = (...values: string[]) =>
		outcome(() => parseShard(new URLSearchParams(values.map((v) => ["shard", v]))));

	it("reads every whole number from 0 to 2^32-1, with leading zeros up to 10 digits", () => {
		fc.assert(
			fc.property(fc.integer({ min: 0, max: maxShard }), fc.nat({ max: 3 }), (shard, zeros) => {
				const text = `${"0".repeat(zeros)}${shard}`;
				if (text.length <= 10) expect(shardOf(text)).toEqual({ value: shard });
				else expect(shardOf(text)).toMatchObject({ code: "invalid_shard" });
			}),
		);
	});

	it("refuses every integer out of range", () => {
		const outOfRange = fc.oneof(fc.bigInt({ max: -1n }), fc.bigInt({ min: BigInt(maxShard) + 1n }));
		fc.assert(
			fc.property(outOfRange, (shard) => {
				expect(shardOf(String(shard))).toMatchObject({ code: "invalid_shard" });
			}),
		);
	});

	it("answers any value with the number it spells in decimal, or invalid_shard", () => {
		const value = fc.oneof(
			fc.string({ unit: "binary", maxLength: 20 }),
			fc.double().map(String),
			fc.integer().map((n) => `0x${n.toString(16)}`),
			fc.stringMatching(/^[-+ ]?\d{0,12}(\.\d*)?(e\d)?$/),
		);
		fc.assert(
			fc.property(value, (text) => {
				const result = shardOf(text);
				if ("code" in result) expect(result.code).toBe("invalid_shard");
				else {
					expect(text).toMatch(/^\d+$/);
					expect(result.value).toBe(Number(text));
					expect(result.value).toBeLessThanOrEqual(maxShard);
				}
			}),
		);
	});

	it("refuses a repeated shard, even with equal values", () => {
		fc.assert(
			fc.property(fc.nat(), fc.nat(), (a, b) => {
				expect(shardOf(String(a), String(b))).toMatchObject({ code: "invalid_shard" });
			}),
		);
	});
});

describe("readCredentials (property)", () => {
	const headerValue = fc.string({ unit: "binary-ascii", maxLength: 300 }).map((text) => text.replace(/[\0\r\n]/g, ""));
	const scheme = fc.constantFrom("", "Bot ", "bot ", "Bearer ", "Basic ", "Token ");

	it("answers any Authorization and X-Bot-Token with credentials, invalid_token or invalid_authorization, never echoing them", () => {
		const messages = new Set<string>();
		fc.assert(
			fc.property(scheme, headerValue, fc.option(headerValue), (prefix, value, botHeader) => {
				const headers = new Headers({ authorization: `${prefix}${value}` });
				if (botHeader !== null) headers.set("x-bot-token", botHeader);
				const result = outcome(() => readCredentials(new Request("http://queue.test/", { headers })));
				if ("code" in result) {
					expect(["invalid_token", "invalid_authorization"]).toContain(result.code);
					messages.add(result.message);
				}
			}),
		);
		// The messages are fixed texts: nothing of the input is in them.
		expect(messages.size).toBeLessThanOrEqual(5);
	});
});

describe("Pacer (property): no alarm loop", () => {
	type Step =
		| { kind: "enqueue"; shard: number | null }
		| { kind: "reattach"; index: number }
		| { kind: "cancel"; index: number }
		| { kind: "detach"; index: number }
		| { kind: "advance"; ms: number }
		| { kind: "concurrency"; maxConcurrency: number }
		| { kind: "restart" };
	const step: fc.Arbitrary<Step> = fc.oneof(
		fc.record({ kind: fc.constant("enqueue" as const), shard: fc.option(fc.nat({ max: 2 ** 32 - 1 })) }),
		fc.record({ kind: fc.constant("reattach" as const), index: fc.nat({ max: 50 }) }),
		fc.record({ kind: fc.constant("cancel" as const), index: fc.nat({ max: 50 }) }),
		fc.record({ kind: fc.constant("detach" as const), index: fc.nat({ max: 50 }) }),
		fc.record({ kind: fc.constant("advance" as const), ms: fc.nat({ max: 12_000 }) }),
		fc.record({ kind: fc.constant("concurrency" as const), maxConcurrency: fc.integer({ min: 1, max: 64 }) }),
		fc.record({ kind: fc.constant("restart" as const) }),
	);

	it("after granting what is due, the next wake-up is in the future, or there is none and nothing is held; restarts included", () => {
		fc.assert(
			fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
				const options = { intervalMs: 5500, retryGraceMs: 10_000 };
				let pacer = new Pacer({ maxConcurrency: 4, ...options });
				/** What is persisted: the pacer's changes applied, as the object does. */
				const saved = new Map<string, SavedPlace>();
				const requests: Waiter[] = [];
				let nowMs = 1_000_000;
				for (const [index, next] of steps.entries()) {
					const ticket = "index" in next ? (requests[next.index]?.ticket ?? "none") : "none";
					if (next.kind === "enqueue") {
						const request = { ticket: `t${index}`, shard: next.shard, enqueuedAtMs: nowMs };
						requests.push(request);
						pacer.enqueue(request);
					} else if (next.kind === "reattach") {
						const request = requests[next.index];
						if (request) pacer.enqueue({ ...request, enqueuedAtMs: nowMs });
					} else if (next.kind === "cancel") pacer.cancel(ticket);
					else if (next.kind === "detach") pacer.detach(ticket, nowMs);
					else if (next.kind === "advance") nowMs += next.ms;
					else if (next.kind === "concurrency") pacer.setMaxConcurrency(next.maxConcurrency);
					else {
						pacer = new Pacer({ maxConcurrency: pacer.maxConcurrency, lastGrants: pacer.lastGrants(), ...options });
						pacer.restore(saved.values(), nowMs, 3000);
					}
					pacer.takeDue(nowMs);
					for (const change of pacer.takeChanges()) {
						if (change.place) saved.set(change.key, change.place);
						else saved.delete(change.key);
					}
					const times = [pacer.nextDueAtMs(), pacer.nextExpiryAtMs()].filter((time) => time !== undefined);
					const wakeAtMs = times.length > 0 ? Math.min(...times) : undefined;
					// An alarm armed at or before now would fire, grant nothing and be armed again.
					if (wakeAtMs !== undefined) expect(wakeAtMs).toBeGreaterThan(nowMs);
					expect(pacer.waitingCount).toBeLessThanOrEqual(requests.length);
					// Nothing is held without an alarm to come back to it (places kept for a retry included).
					if (wakeAtMs === undefined) expect(pacer.placeCount).toBe(0);
					// What is persisted is what is held: a restart restores exactly the places in memory.
					expect(saved.size).toBe(pacer.placeCount);
				}
			}),
		);
	});
});
