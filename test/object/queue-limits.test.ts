import { describe, expect, it } from "vitest";
import { fakeDiscord, gatewayBotBody } from "../support/discord-fake";
import { acquire, acquireRequest, queueOnFakeClock, untilWaiting } from "../support/queue";

describe("the queue object's bound on waiting requests (MAX_WAITERS_PER_QUEUE=50 here)", () => {
	it("also holds while a bot's first /gateway/bot answer is awaited, so a slow Discord cannot pile requests up", async () => {
		let answer: () => void = () => {};
		fakeDiscord({ body: gatewayBotBody(1), after: new Promise((resolve) => (answer = resolve)) });
		const { stub } = await queueOnFakeClock();
		const requests = Array.from({ length: 50 }, (_, shard) => acquireRequest(shard, { token: "slow.discord" }));
		const arriving = requests.map((request) => acquire(stub, request));
		const overflow = acquire(stub, acquireRequest(50, { token: "slow.discord" }));
		expect(await overflow).toEqual({ ok: false, error: "overloaded" });

		answer();
		await untilWaiting(stub, 49);
		for (const request of requests) await stub.cancel(request.ticket);
		const results = await Promise.all(arriving);
		expect(results.filter((result) => result.ok)).toHaveLength(1);
		expect(results.filter((result) => !result.ok && result.error === "cancelled")).toHaveLength(49);
	});
});
