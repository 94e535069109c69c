import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defaultMaxQueueNameLength } from "../../src/config/settings";
import { presentedBotToken } from "../../src/edge/auth";
import { parseQueueName, parseShard } from "../../src/edge/validation";
import { outcomeOf as outcome } from "../support/api-error";

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

describe("presentedBotToken (property)", () => {
	const headerValue = fc.string({ unit: "binary-ascii", maxLength: 300 }).map((text) => text.replace(/[\0\r\n]/g, ""));
	const scheme = fc.constantFrom("", "Bot ", "bot ", "Bearer ", "Basic ", "Token ");

	it("answers any Authorization and X-Bot-Token with credentials, invalid_token or invalid_authorization, never echoing them", () => {
		const messages = new Set<string>();
		fc.assert(
			fc.property(scheme, headerValue, fc.option(headerValue), (prefix, value, botHeader) => {
				const headers = new Headers({ authorization: `${prefix}${value}` });
				if (botHeader !== null) headers.set("x-bot-token", botHeader);
				const result = outcome(() => presentedBotToken(new Request("http://queue.test/", { headers })));
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
