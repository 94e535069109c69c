/**
 * A round of grants, and what starts one: what every path does, arrival, timer,
 * alarm, cancel and Discord's answer alike. Grants what is due within the
 * budget, refuses at the reserve only the requests that read refusals, persists
 * it all in one transaction and arms the next wake-up.
 */
import { identifyLagMs } from "../core/budget";
import type { GatewayBotResult } from "../core/gateway-bot";
import type { Grant, Pacer, PlaceChange } from "../core/pacing";
import { recentGrantsWindowMs } from "../core/status";
import type { DiscordSync } from "./discord-sync";
import type { QueueWaiter, Refused } from "./rpc";
import type { QueueStorage } from "./storage";
import type { QueueTelemetry } from "./telemetry";
import type { Waiters } from "./waiters";
import { type SetTimer, WakeUps } from "./wake-ups";

export interface RoundParts {
	pacer: Pacer<QueueWaiter>;
	storage: QueueStorage;
	sync: DiscordSync;
	telemetry: QueueTelemetry;
	waiters: Waiters;
	/** Read again when a timer or Discord's answer starts a round. */
	clock: () => number;
	setTimer: () => SetTimer;
}

/**
 * How long a change of the waiting line may wait for a commit when nothing else
 * is written: an arrival that is not granted at once is saved with the next
 * round, or this long after, so the requests arriving together share one commit
 * instead of one each. A restart within this window forgets their places: their
 * requests come back (the Worker calls again) and take new ones, behind the places saved.
 */
export const placesFlushMs = 50;

export class Rounds {
	readonly #pacer: Pacer<QueueWaiter>;
	readonly #storage: QueueStorage;
	readonly #sync: DiscordSync;
	readonly #telemetry: QueueTelemetry;
	readonly #waiters: Waiters;
	readonly #clock: () => number;
	readonly #wakeUps: WakeUps;
	/** Whether the budget held the line at the last round, and when starts last came back (grants are not late for the wait). */
	#heldByBudget = false;
	#startsBackAtMs = 0;
	/** When the waiting line's unsaved changes are written at the latest (`placesFlushMs`). */
	#placesDueAtMs: number | undefined;

	constructor(parts: RoundParts) {
		this.#pacer = parts.pacer;
		this.#storage = parts.storage;
		this.#sync = parts.sync;
		this.#telemetry = parts.telemetry;
		this.#waiters = parts.waiters;
		this.#clock = parts.clock;
		this.#wakeUps = new WakeUps(parts.storage, parts.setTimer, () => this.grantDue(this.#clock()));
	}

	get heldByBudget(): boolean {
		return this.#heldByBudget;
	}

	alarmFired(): void {
		this.#wakeUps.alarmFired();
	}

	async grantDue(nowMs: number): Promise<void> {
		this.startRefreshIfDue(nowMs);
		const available = this.#sync.startsAvailable();
		if (available > 0 && this.#heldByBudget) this.#startsBackAtMs = nowMs;
		const grants = this.#pacer.takeDue(nowMs, available);
		const exhausted = available - grants.length <= 0;
		const refused = exhausted ? this.#pacer.removeWhere((waiter) => waiter.refusals) : [];
		// The requests left are held from now on: count each once per hold.
		if (exhausted && !this.#heldByBudget) this.#telemetry.heldAtReserve(this.#pacer.waitingCount, nowMs);
		this.#heldByBudget = exhausted && this.#sync.known() !== undefined;
		for (const grant of grants) this.#telemetry.granted(grant, this.#startsBackAtMs);
		const metrics = this.#telemetry.takeChanged(nowMs);
		const places = this.#placesToWrite(grants.length > 0 || metrics !== undefined, nowMs);
		if (grants.length > 0 || places.length > 0 || metrics) {
			// On disk before any response leaves (output gate): a restart still spaces the
			// next grant of each bucket from these, and still counts the starts they spent.
			this.#storage.writeRound({
				grants,
				budget: this.#sync.spend(grants.length),
				places,
				metrics,
				forgetGrantsBeforeMs: nowMs - Math.max(recentGrantsWindowMs, identifyLagMs),
			});
			for (const grant of grants) this.#answerGrant(grant);
			this.#telemetry.logRound(grants);
		}
		const budgetRefusal = this.#sync.refusal(nowMs);
		if (budgetRefusal) for (const waiter of refused) this.answer(waiter.ticket, budgetRefusal, nowMs);
		await this.#wakeUps.arm(this.#nextWakeAtMs(exhausted), nowMs, this.#placesDueAtMs);
	}

	/** The line's changes when the round writes anyway or they are due; otherwise they wait, with a time set. */
	#placesToWrite(writing: boolean, nowMs: number): PlaceChange<QueueWaiter>[] {
		if (this.#pacer.hasChanges && !writing && nowMs < (this.#placesDueAtMs ?? Number.POSITIVE_INFINITY)) {
			this.#placesDueAtMs ??= nowMs + placesFlushMs;
			return [];
		}
		this.#placesDueAtMs = undefined;
		return this.#pacer.takeChanges();
	}

	/**
	 * The next grant (unless the budget allows none), the next place to drop, and,
	 * while anyone waits, the next time Discord is due: a queue whose shards each
	 * hold one long request re-reads the budget without a new request.
	 */
	#nextWakeAtMs(exhausted: boolean): number | null {
		const grantAtMs = exhausted ? undefined : this.#pacer.nextDueAtMs();
		const callAtMs = this.#pacer.waitingCount > 0 ? this.#sync.nextCallAtMs() : undefined;
		const times = [grantAtMs, this.#pacer.nextExpiryAtMs(), callAtMs].filter((time) => time !== undefined);
		return times.length > 0 ? Math.min(...times) : null;
	}

	/** Asks Discord when due; its answer starts a round. */
	startRefreshIfDue(nowMs: number): void {
		this.#sync.startIfDue(nowMs, (result) => this.#onGatewayBot(result, this.#clock()));
	}

	/** Discord's answer: persisted, the buckets set from it, a rejected token's line answered; then a round. */
	async #onGatewayBot(result: GatewayBotResult, nowMs: number): Promise<void> {
		this.#sync.answered(result, nowMs);
		this.#telemetry.gatewayBotAnswered(result, this.#sync.stored.nextRefreshAtMs, nowMs);
		const dropped = this.#sync.tokenRejected ? this.#pacer.drain() : [];
		this.#storage.writeSync(this.#sync.stored, this.#pacer.takeChanges(), this.#telemetry.takeChanged(nowMs));
		for (const waiter of dropped) this.answer(waiter.ticket, { ok: false, error: "unauthorized" }, nowMs);
		if (result.kind === "ok") this.setConcurrency(result.gatewayBot.maxConcurrency);
		await this.grantDue(nowMs);
	}

	/**
	 * A grant its request never received (the Worker saw its client leave before
	 * the answer came), while it is still its bucket's latest: the spacing and the
	 * start are given back and the shard keeps its place at the head of its line
	 * (`Pacer.handBack`); then a round, since the slot is free again.
	 */
	async handBack(ticket: string, nowMs: number): Promise<boolean> {
		const grant = this.#pacer.latestGrantOf(ticket);
		if (!grant || !this.#pacer.handBack(grant, nowMs)) return false;
		this.#telemetry.handedBack(grant, nowMs);
		this.#storage.writeHandBack({
			grant,
			budget: this.#sync.spend(-1),
			places: this.#pacer.takeChanges(),
			metrics: this.#telemetry.takeChanged(nowMs),
		});
		await this.grantDue(nowMs);
		return true;
	}

	/** Re-buckets the waiting shards when the number of buckets changes, and persists that. */
	setConcurrency(maxConcurrency: number): void {
		if (maxConcurrency === this.#pacer.maxConcurrency) return;
		this.#pacer.setMaxConcurrency(maxConcurrency);
		this.#storage.writeConcurrency(maxConcurrency, this.#pacer.lastGrants());
	}

	#answerGrant({ waiter, bucket, grantedAtMs }: Grant<QueueWaiter>): void {
		this.#waiters.resolve(waiter.ticket, {
			ok: true,
			shard: waiter.shard,
			bucket,
			waitedMs: grantedAtMs - waiter.enqueuedAtMs,
			grantedAtMs,
		});
	}

	/** Answers a request in line with a refusal, counted and logged. */
	answer(ticket: string, result: Refused, nowMs: number): void {
		const settled = this.#waiters.resolve(ticket, result);
		if (settled) this.refuse(settled.shard, settled.arrivedAtMs, result, nowMs);
	}

	refuse(shard: number | null, arrivedAtMs: number, result: Refused, nowMs: number): Refused {
		const bucket = this.#pacer.bucketOf(shard);
		this.#telemetry.refused(result.error, { bucket, shard, waitedMs: nowMs - arrivedAtMs }, nowMs);
		return result;
	}
}
