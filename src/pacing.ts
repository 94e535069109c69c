/**
 * The scheduler: which waiting shard may IDENTIFY when. Pure: every method takes
 * the time it should act at, so it is tested with explicit clock values.
 *
 * Discord allows one IDENTIFY per bucket (`shard % maxConcurrency`) per window;
 * two grants of one bucket are kept at least `intervalMs` apart, waiters of a
 * bucket are served in arrival order, and buckets do not wait for each other.
 */

export interface Waiter {
	/** Unique per request; how a request is cancelled. */
	ticket: string;
	/** `null` when the request named no shard (bucket 0, as in twilight's queue). */
	shard: number | null;
	enqueuedAtMs: number;
}

export interface Grant {
	waiter: Waiter;
	bucket: number;
	grantedAtMs: number;
}

export interface PacerOptions {
	maxConcurrency: number;
	intervalMs: number;
	/** Last grant per bucket, as persisted. */
	lastGrants?: Iterable<readonly [bucket: number, grantedAtMs: number]>;
}

/** A request that named a shard is keyed by it, so a retry of that shard finds its place. */
type PlaceKey = number | string;

interface Place {
	waiter: Waiter;
	/** Arrival order of the place, kept when a retry takes it over. */
	order: number;
}

export class Pacer {
	#maxConcurrency: number;
	readonly #intervalMs: number;
	readonly #lastGrantAtMs = new Map<number, number>();
	/** Waiting lines per bucket; a Map keeps insertion order, and `set` on a present key keeps its place. */
	#lines = new Map<number, Map<PlaceKey, Place>>();
	readonly #placeOfTicket = new Map<string, { bucket: number; key: PlaceKey }>();
	#nextOrder = 0;

	constructor({ maxConcurrency, intervalMs, lastGrants = [] }: PacerOptions) {
		this.#maxConcurrency = maxConcurrency;
		this.#intervalMs = intervalMs;
		for (const [bucket, grantedAtMs] of lastGrants) this.#lastGrantAtMs.set(bucket, grantedAtMs);
	}

	get maxConcurrency(): number {
		return this.#maxConcurrency;
	}

	get waitingCount(): number {
		return this.#placeOfTicket.size;
	}

	bucketOf(shard: number | null): number {
		return shard === null ? 0 : shard % this.#maxConcurrency;
	}

	/**
	 * Puts a request in line. A request for a shard that is already waiting takes
	 * over that place (a client that timed out and retried keeps its position);
	 * the request it replaces is returned as `superseded`.
	 */
	enqueue(waiter: Waiter): { bucket: number; superseded?: Waiter } {
		return this.#place(waiter, this.#nextOrder++);
	}

	#place(waiter: Waiter, order: number): { bucket: number; superseded?: Waiter } {
		const bucket = this.bucketOf(waiter.shard);
		const key: PlaceKey = waiter.shard ?? waiter.ticket;
		let line = this.#lines.get(bucket);
		if (!line) {
			line = new Map();
			this.#lines.set(bucket, line);
		}
		const taken = line.get(key);
		if (taken) this.#placeOfTicket.delete(taken.waiter.ticket);
		line.set(key, { waiter, order: taken?.order ?? order });
		this.#placeOfTicket.set(waiter.ticket, { bucket, key });
		return taken ? { bucket, superseded: taken.waiter } : { bucket };
	}

	/** Removes a waiting request; returns it, or `undefined` if it was not waiting. */
	cancel(ticket: string): Waiter | undefined {
		const place = this.#placeOfTicket.get(ticket);
		if (!place) return undefined;
		const line = this.#lines.get(place.bucket);
		const cancelled = line?.get(place.key);
		line?.delete(place.key);
		if (line?.size === 0) this.#lines.delete(place.bucket);
		this.#placeOfTicket.delete(ticket);
		return cancelled?.waiter;
	}

	/** Removes every waiting request and returns them in arrival order. */
	drain(): Waiter[] {
		const places = this.#placesInOrder();
		this.#lines.clear();
		this.#placeOfTicket.clear();
		return places.map((place) => place.waiter);
	}

	#placesInOrder(): Place[] {
		const places = [...this.#lines.values()].flatMap((line) => [...line.values()]);
		return places.sort((a, b) => a.order - b.order);
	}

	/** When `bucket` may grant again (0 when it never granted). */
	dueAtMs(bucket: number): number {
		const last = this.#lastGrantAtMs.get(bucket);
		return last === undefined ? 0 : last + this.#intervalMs;
	}

	/**
	 * Grants the head of every bucket whose spacing has passed at `nowMs`, at most
	 * `limit` of them, earliest arrival first. Never grants early.
	 */
	takeDue(nowMs: number, limit = Number.POSITIVE_INFINITY): Grant[] {
		const heads: { bucket: number; key: PlaceKey; place: Place }[] = [];
		for (const [bucket, line] of this.#lines) {
			if (nowMs < this.dueAtMs(bucket)) continue;
			const [key, place] = line.entries().next().value as [PlaceKey, Place];
			heads.push({ bucket, key, place });
		}
		heads.sort((a, b) => a.place.order - b.place.order);
		return heads.slice(0, limit).map(({ bucket, key, place: { waiter } }) => {
			const line = this.#lines.get(bucket);
			line?.delete(key);
			if (line?.size === 0) this.#lines.delete(bucket);
			this.#placeOfTicket.delete(waiter.ticket);
			this.#lastGrantAtMs.set(bucket, nowMs);
			return { waiter, bucket, grantedAtMs: nowMs };
		});
	}

	/** The earliest time a waiting request becomes due, or `undefined` when nobody waits. */
	nextDueAtMs(): number | undefined {
		let next: number | undefined;
		for (const bucket of this.#lines.keys()) {
			const due = this.dueAtMs(bucket);
			if (next === undefined || due < next) next = due;
		}
		return next;
	}

	/**
	 * Changes the number of buckets. Waiting requests are re-bucketed in their
	 * arrival order. Every bucket then counts as granted at the latest grant of
	 * any bucket: which old bucket a new one's IDENTIFYs came from is unknown to
	 * Discord's new buckets, so the only safe assumption is the latest.
	 */
	setMaxConcurrency(maxConcurrency: number): void {
		if (maxConcurrency === this.#maxConcurrency) return;
		const waiting = this.#placesInOrder();
		let latestGrant: number | undefined;
		for (const grantedAtMs of this.#lastGrantAtMs.values()) {
			if (latestGrant === undefined || grantedAtMs > latestGrant) latestGrant = grantedAtMs;
		}
		this.#maxConcurrency = maxConcurrency;
		this.#lines = new Map();
		this.#placeOfTicket.clear();
		this.#lastGrantAtMs.clear();
		if (latestGrant !== undefined) {
			for (let bucket = 0; bucket < maxConcurrency; bucket++) this.#lastGrantAtMs.set(bucket, latestGrant);
		}
		for (const { waiter, order } of waiting) this.#place(waiter, order);
	}

	/** Last grant per bucket, for persisting. */
	lastGrants(): ReadonlyMap<number, number> {
		return this.#lastGrantAtMs;
	}

	get intervalMs(): number {
		return this.#intervalMs;
	}

	/**
	 * The buckets that have waiting requests, in bucket order: how many wait in
	 * each, and the first `listed` of them in the order they will be granted.
	 */
	waitingLines(listed = Number.POSITIVE_INFINITY): { bucket: number; waiting: number; waiters: Waiter[] }[] {
		return [...this.#lines]
			.sort(([a], [b]) => a - b)
			.map(([bucket, line]) => {
				const waiters: Waiter[] = [];
				for (const place of line.values()) {
					if (waiters.length >= listed) break;
					waiters.push(place.waiter);
				}
				return { bucket, waiting: line.size, waiters };
			});
	}

	/** When the head of `bucket` will be granted if the tick is on time, or `undefined` when nobody waits there. */
	nextGrantAtMs(bucket: number, nowMs: number): number | undefined {
		return this.#lines.has(bucket) ? Math.max(this.dueAtMs(bucket), nowMs) : undefined;
	}
}
