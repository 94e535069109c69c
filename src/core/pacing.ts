/**
 * The scheduler: which waiting shard may IDENTIFY when. Pure: every method takes
 * the time it should act at, so it is tested with explicit clock values.
 *
 * Discord allows one IDENTIFY per bucket (`shard % maxConcurrency`) per window;
 * two grants of one bucket are kept at least `intervalMs` apart, waiters of a
 * bucket are served in arrival order, and buckets do not wait for each other.
 *
 * A named shard whose client left keeps its place for `retryGraceMs`, detached:
 * never granted (the grant would go to nobody), but a retry of the shard takes it
 * back. A client that gives up and retries therefore keeps its position.
 *
 * Buckets whose turns fall within `roundWindowMs` of each other share one round:
 * the earlier ones wait for the latest, so the queue wakes (and commits) once for
 * them instead of once each. A bucket's grants are never more than the window late
 * in all by this, from the first grant of its run of waiters; they stay together after.
 * A request that arrives once its bucket is free is never held for a round.
 *
 * The lines can be saved and restored: `takeChanges` tells what to persist, and
 * `restore` brings the places back after a restart, detached until their requests
 * come back for them. Meanwhile a restored place holds its turn for a short
 * while, so the requests that come back are granted in their old order.
 */

export interface Waiter {
	/** Unique per request; how a request is cancelled. */
	ticket: string;
	/** `null` when the request named no shard (bucket 0, as in twilight's queue). */
	shard: number | null;
	enqueuedAtMs: number;
}

export interface Grant<W extends Waiter = Waiter> {
	waiter: W;
	bucket: number;
	grantedAtMs: number;
	/** The earliest the grant could have been: its bucket's spacing, its arrival, a restored place's held turn. */
	dueAtMs: number;
	/** The place's position in line, and the bucket's grant before this one: what `handBack` restores. */
	order: number;
	previousGrantAtMs: number | undefined;
}

/** A place as it is persisted: its request and its position in line. */
export interface SavedPlace<W extends Waiter = Waiter> {
	key: string;
	order: number;
	waiter: W;
}

/** A place to save, or the key of one to delete (`place` undefined). */
export interface PlaceChange<W extends Waiter = Waiter> {
	key: string;
	place: SavedPlace<W> | undefined;
}

/**
 * How late a bucket's grants may come in all so that buckets due within a few ms
 * of each other share one round: the requests of a start-up arrive over some ms, so
 * the buckets' first grants, and every round after, would each wake the queue.
 */
export const sharedRoundWindowMs = 5;

export interface PacerOptions {
	maxConcurrency: number;
	intervalMs: number;
	/** Last grant per bucket, as persisted. */
	lastGrants?: Iterable<readonly [bucket: number, grantedAtMs: number]>;
	/** How long `detach` keeps a departed shard's place for its retry; 0 removes it at once. */
	retryGraceMs?: number;
	/** How late a bucket may be granted in all to share its round with a later bucket's; 0 never waits. */
	roundWindowMs?: number;
}

/** A bucket's next grant: its head, when its spacing allows it, and when its round is (no earlier). */
interface Turn<W extends Waiter> {
	bucket: number;
	place: Place<W>;
	dueAtMs: number;
	roundAtMs: number;
}

interface Place<W extends Waiter> {
	waiter: W;
	/** Arrival order of the place, kept when a retry takes it over. */
	order: number;
	/** Set while the place is detached (its client left): kept for a retry until then, never granted. */
	detachedUntilMs?: number;
	/** Set on a restored place: until then, its bucket grants nobody behind it. */
	holdsTurnUntilMs?: number;
}

/**
 * A request that named a shard is keyed by it, so a retry of that shard finds its
 * place; one without a shard by its ticket, which only the same request carries.
 */
const keyOf = (waiter: Waiter): string => (waiter.shard === null ? `ticket:${waiter.ticket}` : `shard:${waiter.shard}`);

export class Pacer<W extends Waiter = Waiter> {
	#maxConcurrency: number;
	readonly #intervalMs: number;
	readonly #retryGraceMs: number;
	readonly #roundWindowMs: number;
	/** How late each bucket's grants came in all, since its line last ran empty: what it may still wait for a round. */
	readonly #lateByMs = new Map<number, number>();
	readonly #lastGrantAtMs = new Map<number, number>();
	/** Each bucket's latest grant since this pacer began (not persisted): the one `handBack` can take back. */
	readonly #latestGrants = new Map<number, Grant<W>>();
	/** Waiting lines per bucket; a Map keeps insertion order, and `set` on a present key keeps its place. */
	#lines = new Map<number, Map<string, Place<W>>>();
	readonly #placeOfTicket = new Map<string, { bucket: number; key: string }>();
	/** Detached places in the order they were detached, which is the order they expire in. */
	readonly #detached = new Set<Place<W>>();
	/** Places added, replaced or removed since `takeChanges`, by key. */
	readonly #changes = new Map<string, Place<W> | undefined>();
	#nextOrder = 0;

	constructor({ maxConcurrency, intervalMs, lastGrants = [], retryGraceMs = 0, roundWindowMs = 0 }: PacerOptions) {
		this.#maxConcurrency = maxConcurrency;
		this.#intervalMs = intervalMs;
		this.#retryGraceMs = retryGraceMs;
		this.#roundWindowMs = roundWindowMs;
		for (const [bucket, grantedAtMs] of lastGrants) this.#lastGrantAtMs.set(bucket, grantedAtMs);
	}

	get maxConcurrency(): number {
		return this.#maxConcurrency;
	}

	/** Requests waiting for a grant; detached places are not counted. */
	get waitingCount(): number {
		return this.#placeOfTicket.size;
	}

	/** Places held in memory, waiting or detached: what a bound on the queue's size counts. */
	get placeCount(): number {
		return this.#placeOfTicket.size + this.#detached.size;
	}

	bucketOf(shard: number | null): number {
		return shard === null ? 0 : shard % this.#maxConcurrency;
	}

	/**
	 * Puts a request in line. A request for a shard that is already waiting takes
	 * over that place (a client that timed out and retried keeps its position);
	 * the request it replaces is returned as `superseded`. A detached place of the
	 * shard, or a restored place of the same ticket, is taken back the same way.
	 * The same ticket is the same request: it keeps its first arrival time.
	 * The request arrives at its `enqueuedAtMs`: detached places expired by then are dropped first.
	 */
	enqueue(waiter: W): { bucket: number; superseded?: W; restored?: true } {
		this.#dropExpired(waiter.enqueuedAtMs);
		return this.#place(waiter, this.#nextOrder++);
	}

	#place(waiter: W, order: number): { bucket: number; superseded?: W; restored?: true } {
		const bucket = this.bucketOf(waiter.shard);
		const key = keyOf(waiter);
		const line = this.#lineOf(bucket);
		const taken = line.get(key);
		if (taken?.detachedUntilMs !== undefined) this.#detached.delete(taken);
		else if (taken) this.#placeOfTicket.delete(taken.waiter.ticket);
		const sameRequest = taken?.waiter.ticket === waiter.ticket;
		const place = {
			waiter: sameRequest && taken ? { ...waiter, enqueuedAtMs: taken.waiter.enqueuedAtMs } : waiter,
			order: taken?.order ?? order,
		};
		line.set(key, place);
		this.#changes.set(key, place);
		this.#placeOfTicket.set(waiter.ticket, { bucket, key });
		const superseded = taken && taken.detachedUntilMs === undefined && !sameRequest ? taken.waiter : undefined;
		if (superseded) return { bucket, superseded };
		// The request (or the shard's retry) takes back a place read back after a restart.
		return taken?.holdsTurnUntilMs !== undefined ? { bucket, restored: true } : { bucket };
	}

	/**
	 * Brings saved places back, in their order, detached: a request for the shard
	 * (or with the same ticket) takes its place back within `retryGraceMs`. Until
	 * `nowMs + holdTurnMs` (at most the grace) a restored place also holds its
	 * bucket's turn, so the requests behind it wait for it to come back.
	 */
	restore(saved: Iterable<SavedPlace<W>>, nowMs: number, holdTurnMs: number): void {
		const places = [...saved].sort((a, b) => a.order - b.order);
		for (const { key, order, waiter } of places) {
			const place: Place<W> = {
				waiter,
				order,
				detachedUntilMs: nowMs + this.#retryGraceMs,
				holdsTurnUntilMs: nowMs + Math.min(holdTurnMs, this.#retryGraceMs),
			};
			this.#lineOf(this.bucketOf(waiter.shard)).set(key, place);
			this.#detached.add(place);
			this.#nextOrder = Math.max(this.#nextOrder, order + 1);
		}
	}

	/** Whether a place changed since the last `takeChanges`. */
	get hasChanges(): boolean {
		return this.#changes.size > 0;
	}

	/** What changed since the last call, for the caller to persist: saved places, and keys to delete. */
	takeChanges(): PlaceChange<W>[] {
		const changes = [...this.#changes].map(([key, place]) => ({
			key,
			place: place && { key, order: place.order, waiter: place.waiter },
		}));
		this.#changes.clear();
		return changes;
	}

	#lineOf(bucket: number): Map<string, Place<W>> {
		let line = this.#lines.get(bucket);
		if (!line) {
			line = new Map();
			this.#lines.set(bucket, line);
		}
		return line;
	}

	/** Removes a waiting request at once; returns it, or `undefined` if it was not waiting. */
	cancel(ticket: string): W | undefined {
		const place = this.#placeOfTicket.get(ticket);
		if (!place) return undefined;
		this.#placeOfTicket.delete(ticket);
		return this.#remove(place.bucket, place.key)?.waiter;
	}

	/**
	 * Cancels a waiting request whose client left, at `nowMs`. A named shard's place
	 * is kept detached until `nowMs + retryGraceMs` for the shard's retry; a request
	 * without a shard (nothing can retake it), or a grace of 0, is removed at once.
	 * Returns the request, or `undefined` if it was not waiting.
	 */
	detach(ticket: string, nowMs: number): W | undefined {
		const location = this.#placeOfTicket.get(ticket);
		const place = location && this.#lines.get(location.bucket)?.get(location.key);
		if (!place || place.waiter.shard === null || this.#retryGraceMs <= 0) return this.cancel(ticket);
		this.#placeOfTicket.delete(ticket);
		place.detachedUntilMs = nowMs + this.#retryGraceMs;
		this.#detached.add(place);
		return place.waiter;
	}

	/** Drops the detached places whose grace has passed at `nowMs`. */
	#dropExpired(nowMs: number): void {
		// In expiry order: the first place still kept ends the sweep.
		for (const place of this.#detached) {
			if ((place.detachedUntilMs ?? nowMs) > nowMs) break;
			this.#detached.delete(place);
			this.#remove(this.bucketOf(place.waiter.shard), keyOf(place.waiter));
		}
	}

	#remove(bucket: number, key: string): Place<W> | undefined {
		const line = this.#lines.get(bucket);
		const place = line?.get(key);
		if (!place) return undefined;
		line?.delete(key);
		if (line?.size === 0) this.#lines.delete(bucket);
		this.#changes.set(key, undefined);
		return place;
	}

	/** Removes every waiting request and returns them in arrival order; detached places are dropped. */
	drain(): W[] {
		return this.removeWhere(() => true, { detachedToo: true });
	}

	/**
	 * Removes the waiting requests `matches` picks, and returns them in arrival
	 * order; with `detachedToo`, every detached place is dropped as well.
	 */
	removeWhere(matches: (waiter: W) => boolean, { detachedToo = false } = {}): W[] {
		const removed: W[] = [];
		for (const place of this.#placesInOrder()) {
			const detached = place.detachedUntilMs !== undefined;
			if (detached ? !detachedToo : !matches(place.waiter)) continue;
			this.#remove(this.bucketOf(place.waiter.shard), keyOf(place.waiter));
			if (detached) this.#detached.delete(place);
			else {
				this.#placeOfTicket.delete(place.waiter.ticket);
				removed.push(place.waiter);
			}
		}
		return removed;
	}

	#placesInOrder(): Place<W>[] {
		const places = [...this.#lines.values()].flatMap((line) => [...line.values()]);
		return places.sort((a, b) => a.order - b.order);
	}

	/** When `bucket` may grant again (0 when it never granted). */
	dueAtMs(bucket: number): number {
		const last = this.#lastGrantAtMs.get(bucket);
		return last === undefined ? 0 : last + this.#intervalMs;
	}

	/**
	 * Grants the head of every bucket whose round has come at `nowMs`, at most
	 * `limit` of them, earliest arrival first. Never grants early. The head is the
	 * first place that is not detached; detached places expired at `nowMs` are dropped.
	 */
	takeDue(nowMs: number, limit = Number.POSITIVE_INFINITY): Grant<W>[] {
		this.#dropExpired(nowMs);
		const heads = this.#turns()
			.filter((turn) => nowMs >= turn.roundAtMs)
			.map(({ bucket, place, dueAtMs }) => ({ bucket, place, dueAtMs: Math.max(dueAtMs, place.waiter.enqueuedAtMs) }));
		heads.sort((a, b) => a.place.order - b.place.order);
		return heads.slice(0, limit).map(({ bucket, place: { waiter, order }, dueAtMs }) => {
			this.#remove(bucket, keyOf(waiter));
			this.#placeOfTicket.delete(waiter.ticket);
			const previousGrantAtMs = this.#lastGrantAtMs.get(bucket);
			this.#lastGrantAtMs.set(bucket, nowMs);
			const grant = { waiter, bucket, grantedAtMs: nowMs, dueAtMs, order, previousGrantAtMs };
			this.#latestGrants.set(bucket, grant);
			this.#countLateness(bucket, nowMs - dueAtMs);
			return grant;
		});
	}

	/** Adds a grant's lateness to its bucket's; a bucket whose line ran empty starts again from 0. */
	#countLateness(bucket: number, lateMs: number): void {
		const line = this.#lines.get(bucket);
		if (line && headOf(line)) this.#lateByMs.set(bucket, (this.#lateByMs.get(bucket) ?? 0) + lateMs);
		else this.#lateByMs.delete(bucket);
	}

	/**
	 * Every bucket with a request to grant, and its round: in order of their due
	 * times, a bucket whose head waits for it joins the round of the ones before it
	 * when that round can wait for it, that is, when none of them would be more than
	 * `roundWindowMs` late in all (their lateness so far counted).
	 */
	#turns(): Turn<W>[] {
		const turns: Turn<W>[] = [];
		for (const [bucket, line] of this.#lines) {
			const head = headOf(line);
			if (!head) continue;
			const dueAtMs = Math.max(this.dueAtMs(bucket), head.notBeforeMs);
			turns.push({ bucket, place: head.place, dueAtMs, roundAtMs: dueAtMs });
		}
		// A head that arrived once its bucket was free is granted at once, in no round.
		const waiting = turns.filter((turn) => turn.place.waiter.enqueuedAtMs < turn.dueAtMs);
		waiting.sort((a, b) => a.dueAtMs - b.dueAtMs);
		let round: Turn<W>[] = [];
		let waitsUntilMs = Number.NEGATIVE_INFINITY;
		const close = () => {
			for (const member of round) member.roundAtMs = round.at(-1)?.dueAtMs ?? member.dueAtMs;
		};
		for (const turn of waiting) {
			if (turn.dueAtMs > waitsUntilMs) {
				close();
				round = [];
				waitsUntilMs = Number.POSITIVE_INFINITY;
			}
			round.push(turn);
			const mayWaitMs = Math.max(0, this.#roundWindowMs - (this.#lateByMs.get(turn.bucket) ?? 0));
			waitsUntilMs = Math.min(waitsUntilMs, turn.dueAtMs + mayWaitMs);
		}
		close();
		return turns;
	}

	/** The grant of `ticket`, while it is still its bucket's latest. */
	latestGrantOf(ticket: string): Grant<W> | undefined {
		for (const grant of this.#latestGrants.values()) if (grant.waiter.ticket === ticket) return grant;
		return undefined;
	}

	/**
	 * Takes back a grant its request never received (its client left before the
	 * answer), when it is still its bucket's latest: the bucket's spacing is as
	 * before it, so the slot goes to the next in line, and the shard's place is back
	 * at the head of its line, detached for its retry (`retryGraceMs`), or, when the
	 * retry already waits, with the retry moved there. A request without a shard has
	 * no retry to keep a place for. Returns whether the grant was taken back.
	 */
	handBack(grant: Grant<W>, nowMs: number): boolean {
		const { waiter, bucket, order, previousGrantAtMs } = grant;
		if (this.#latestGrants.get(bucket) !== grant) return false;
		this.#latestGrants.delete(bucket);
		if (previousGrantAtMs === undefined) this.#lastGrantAtMs.delete(bucket);
		else this.#lastGrantAtMs.set(bucket, previousGrantAtMs);
		if (waiter.shard === null || this.#retryGraceMs <= 0) return true;
		const key = keyOf(waiter);
		const line = this.#lineOf(bucket);
		const retry = line.get(key);
		const place: Place<W> = retry ?? { waiter, order, detachedUntilMs: nowMs + this.#retryGraceMs };
		place.order = Math.min(place.order, order);
		line.delete(key);
		this.#lines.set(bucket, new Map([[key, place], ...line]));
		if (!retry) this.#detached.add(place);
		this.#changes.set(key, place);
		return true;
	}

	/** The earliest round with a request to grant, or `undefined` when nobody waits. */
	nextDueAtMs(): number | undefined {
		let next: number | undefined;
		for (const { roundAtMs } of this.#turns()) if (next === undefined || roundAtMs < next) next = roundAtMs;
		return next;
	}

	/**
	 * When the first detached place expires, or `undefined` when none is kept:
	 * `takeDue` then drops it, so no place is held forever without a wake-up.
	 */
	nextExpiryAtMs(): number | undefined {
		return this.#detached.values().next().value?.detachedUntilMs;
	}

	/**
	 * Changes the number of buckets. Waiting requests are re-bucketed in their
	 * arrival order. Every bucket then counts as granted at the latest grant of
	 * any bucket: which old bucket a new one's IDENTIFYs came from is unknown to
	 * Discord's new buckets, so the only safe assumption is the latest.
	 */
	setMaxConcurrency(maxConcurrency: number): void {
		if (maxConcurrency === this.#maxConcurrency) return;
		const places = this.#placesInOrder();
		let latestGrant: number | undefined;
		for (const grantedAtMs of this.#lastGrantAtMs.values()) {
			if (latestGrant === undefined || grantedAtMs > latestGrant) latestGrant = grantedAtMs;
		}
		this.#maxConcurrency = maxConcurrency;
		this.#lines = new Map();
		this.#placeOfTicket.clear();
		this.#lastGrantAtMs.clear();
		this.#latestGrants.clear();
		this.#lateByMs.clear();
		if (latestGrant !== undefined) {
			for (let bucket = 0; bucket < maxConcurrency; bucket++) this.#lastGrantAtMs.set(bucket, latestGrant);
		}
		for (const place of places) {
			if (place.detachedUntilMs === undefined) this.#place(place.waiter, place.order);
			// The same object, still in `#detached`, in its new line.
			else this.#lineOf(this.bucketOf(place.waiter.shard)).set(keyOf(place.waiter), place);
		}
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
	 * Detached places are not listed: they are never granted.
	 */
	waitingLines(listed = Number.POSITIVE_INFINITY): { bucket: number; waiting: number; waiters: W[] }[] {
		const detachedPerBucket = new Map<number, number>();
		for (const { waiter } of this.#detached) {
			const bucket = this.bucketOf(waiter.shard);
			detachedPerBucket.set(bucket, (detachedPerBucket.get(bucket) ?? 0) + 1);
		}
		return [...this.#lines]
			.sort(([a], [b]) => a - b)
			.map(([bucket, line]) => {
				const waiters: W[] = [];
				for (const place of line.values()) {
					if (waiters.length >= listed) break;
					if (place.detachedUntilMs === undefined) waiters.push(place.waiter);
				}
				return { bucket, waiting: line.size - (detachedPerBucket.get(bucket) ?? 0), waiters };
			})
			.filter((line) => line.waiting > 0);
	}

	/** When the head of each bucket with a request to grant will be granted if the tick is on time, by bucket. */
	nextGrantsAtMs(nowMs: number): Map<number, number> {
		return new Map(this.#turns().map(({ bucket, roundAtMs }) => [bucket, Math.max(roundAtMs, nowMs)]));
	}
}

/**
 * The first place of a line that is not detached: the next one to be granted,
 * not before the restored places ahead of it stop holding their turn.
 */
function headOf<W extends Waiter>(line: Map<string, Place<W>>): { place: Place<W>; notBeforeMs: number } | undefined {
	let notBeforeMs = 0;
	for (const place of line.values()) {
		if (place.detachedUntilMs === undefined) return { place, notBeforeMs };
		if (place.holdsTurnUntilMs !== undefined) notBeforeMs = Math.max(notBeforeMs, place.holdsTurnUntilMs);
	}
	return undefined;
}
