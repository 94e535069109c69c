import { describe, expect, it } from "vitest";
import { parseBotToken } from "../../src/edge/auth";
import type { ApiError } from "../../src/edge/errors";
import { parseQueueName, parseShard, rawPathOf } from "../../src/edge/validation";
import { errorOf } from "../support/api-error";

const errorCodeOf = (run: () => unknown) => errorOf(run).code;

describe("parseQueueName", () => {
	it.each([
		["/", "default"],
		["/bot-1", "bot-1"],
		["/My.Bot_2", "My.Bot_2"],
		["/mybot/", "mybot"],
		["/-x", "-x"],
		[`/${"a".repeat(64)}`, "a".repeat(64)],
	])("reads %j as queue %j", (path, name) => {
		expect(parseQueueName(path)).toBe(name);
	});

	it.each([
		"//",
		"/a/b",
		"/_private",
		"/.hidden",
		"/..",
		"/a%2Fb",
		"/caf%C3%A9",
		"/café",
		"/a b",
		`/${"a".repeat(65)}`,
		"/mybot//",
	])("rejects %j", (path) => {
		expect(errorCodeOf(() => parseQueueName(path))).toBe("invalid_queue_name");
	});
});

describe("parseShard", () => {
	const shard = (query: string) => parseShard(new URLSearchParams(query));

	it("reads a whole number from 0 to 2^32-1, and null when absent", () => {
		expect(shard("")).toBeNull();
		expect(shard("other=1")).toBeNull();
		expect(shard("shard=0")).toBe(0);
		expect(shard("shard=42")).toBe(42);
		expect(shard("shard=4294967295")).toBe(4294967295);
	});

	it.each([
		"shard=",
		"shard=-1",
		"shard=1e3",
		"shard=0x10",
		"shard=1.0",
		"shard=4294967296",
		"shard=99999999999",
		"shard=1&shard=2",
		"shard=%201",
	])("rejects %j, naming the parameter", (query) => {
		expect(errorCodeOf(() => shard(query))).toBe("invalid_shard");
	});
});

describe("parseBotToken", () => {
	it("reads the token of a Bot authorization, whatever the scheme's case", () => {
		expect(parseBotToken("Bot abc.DEF-ghi_1")).toBe("abc.DEF-ghi_1");
		expect(parseBotToken("bot   abc ")).toBe("abc");
	});

	it("ignores a missing header and other schemes", () => {
		expect(parseBotToken(null)).toBeUndefined();
		expect(parseBotToken("Bearer abc")).toBeUndefined();
		expect(parseBotToken("Bottle abc")).toBeUndefined();
	});

	it.each(["Bot", "Bot ", "Bot a b", "Bot a/b", `Bot ${"a".repeat(257)}`])("rejects %j", (header) => {
		expect(errorCodeOf(() => parseBotToken(header))).toBe("invalid_token");
	});

	it("never echoes the token in its error", async () => {
		let response: Response | undefined;
		try {
			parseBotToken("Bot secret/value");
		} catch (error) {
			response = (error as ApiError).toResponse();
		}
		expect(response?.status).toBe(401);
		expect(await response?.text()).not.toContain("secret");
	});
});

describe("rawPathOf", () => {
	it("keeps the path as sent, without the query", () => {
		expect(rawPathOf("http://h/a/../b?shard=1")).toBe("/a/../b");
		expect(rawPathOf("https://h:8787/q%2F1?x=/y")).toBe("/q%2F1");
		expect(rawPathOf("http://h")).toBe("/");
		expect(rawPathOf("http://h/?shard=2")).toBe("/");
	});
});
