import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { queueObjectName } from "../../src/edge/queue-call";
import { placesFlushMs } from "../../src/object/rounds";
import { intervalMs } from "../support/queue";
import { call, type GrantBody, queueStatusOf, readsRefusals, uniqueQueue } from "../support/worker";

// Real time, real objects: MAX_CONCURRENCY=4, so shards 0, 4, 8 and 12 share bucket 0, 2 s apart.
describe("a waiting client across a reset of its queue object (a deploy)", () => {
	it("sees nothing of it: every request is granted once, in its old order, with the spacing kept", async () => {
		const queue = uniqueQueue();
		const first = await call(`/${queue}?shard=0`);
		const waiting = [4, 8].map((shard) => call(`/${queue}?shard=${shard}`));
		// One that reads refusals sees no refusal either.
		waiting.push(call(`/${queue}?shard=12`, { headers: readsRefusals }));
		await vi.waitFor(async () => expect((await queueStatusOf(queue)).waiting).toBe(3));
		// Their places are on disk `placesFlushMs` after they arrived (a reset before forgets them).
		await new Promise((resolve) => setTimeout(resolve, placesFlushMs + 50));

		const object = env.GATEWAY_QUEUE.getByName(await queueObjectName(queue, undefined));
		await runInDurableObject(object, (_queue, state) => state.abort("deploy")).catch(() => "reset");

		const responses = [first, ...(await Promise.all(waiting))];
		expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200]);
		const grants = await Promise.all(responses.map((response) => response.json<GrantBody>()));
		expect(grants.map((grant) => grant.shard)).toEqual([0, 4, 8, 12]);
		for (let index = 1; index < grants.length; index++) {
			const gap = (grants[index]?.granted_at ?? 0) - (grants[index - 1]?.granted_at ?? 0);
			expect(gap).toBeGreaterThanOrEqual(intervalMs);
		}
	}, 20_000);
});
