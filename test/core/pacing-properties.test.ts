import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Pacer, type SavedPlace, type Waiter } from "../../src/core/pacing";

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
		fc.record({ kind: fc.constant("advance" as const), ms: fc.nat({ max: 8 }) }),
		fc.record({ kind: fc.constant("concurrency" as const), maxConcurrency: fc.integer({ min: 1, max: 64 }) }),
		fc.record({ kind: fc.constant("restart" as const) }),
	);

	it("after granting what is due, the next wake-up is in the future, or there is none and nothing is held; no grant closer than the interval; restarts and shared rounds included", () => {
		fc.assert(
			fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
				const options = { intervalMs: 5500, retryGraceMs: 10_000, roundWindowMs: 5 };
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
					for (const grant of pacer.takeDue(nowMs)) {
						const sinceMs = grant.grantedAtMs - (grant.previousGrantAtMs ?? Number.NEGATIVE_INFINITY);
						expect(sinceMs).toBeGreaterThanOrEqual(options.intervalMs);
						expect(grant.grantedAtMs).toBeGreaterThanOrEqual(grant.dueAtMs);
					}
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
