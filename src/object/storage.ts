/**
 * A queue's durable state in its object's SQLite storage: the schema, what is
 * read back at start, and the writes, each atomic with its turn. A write that fails
 * leaves memory and disk out of step, so it resets the object (`onFailure`)
 * instead of returning: every waiting request then gets an error the Worker
 * retries against the state read back from disk.
 */

import type { SessionBudget } from "../core/budget";
import type { GatewayBot } from "../core/gateway-bot";
import type { QueueMetrics } from "../core/metrics";
import type { Grant, PlaceChange, SavedPlace } from "../core/pacing";
import type { RecentGrant } from "../core/status";
import type { QueueWaiter } from "./rpc";

/** The budget with when Discord's figure it comes from arrived. */
export interface StoredBudget extends SessionBudget {
	syncedAtMs: number;
}

/** What Discord last said about the bot, and when to ask again. */
export interface StoredSync {
	/** Only bot-bound queues that Discord answered have it. */
	gatewayBot: GatewayBot | undefined;
	nextRefreshAtMs: number;
	tokenRejected: boolean;
	budget: StoredBudget | undefined;
}

export interface StoredQueue extends StoredSync {
	/** The pacer's buckets: Discord's `max_concurrency`, or the var's, as last set. */
	maxConcurrency: number | undefined;
	lastGrants: [bucket: number, grantedAtMs: number][];
	metrics: QueueMetrics | undefined;
}

/** What a round of grants changes, written in one transaction before any response leaves. */
export interface RoundWrite {
	grants: readonly Grant<QueueWaiter>[];
	/** The budget after the round's grants, for a queue that knows one. */
	budget: StoredBudget | undefined;
	places: readonly PlaceChange<QueueWaiter>[];
	/** Set when the counters changed. */
	metrics: QueueMetrics | undefined;
	/** Grants older than this are no longer needed (the status's window, the budget's last minute). */
	forgetGrantsBeforeMs: number;
}

/**
 * Old grants are deleted at most this often: the delete scans the history, which
 * a big start-up fills with thousands of rows, and every round would pay for it.
 */
export const historyPruneIntervalMs = 10_000;

const keys = {
	gatewayBot: "gateway_bot",
	nextRefreshAt: "gateway_bot_next_refresh_at_ms",
	tokenRejected: "token_rejected",
	pacingConcurrency: "pacing_concurrency",
	sessionBudget: "session_budget",
	metrics: "queue_metrics",
} as const;

export class QueueStorage {
	readonly #storage: DurableObjectStorage;
	readonly #sql: SqlStorage;
	readonly #onFailure: (error: unknown) => never;
	#prunedBeforeMs = Number.NEGATIVE_INFINITY;

	constructor(storage: DurableObjectStorage, onFailure: (error: unknown) => never) {
		this.#storage = storage;
		this.#sql = storage.sql;
		this.#onFailure = onFailure;
		this.#sql.exec(
			"CREATE TABLE IF NOT EXISTS bucket_grant (bucket INTEGER PRIMARY KEY, granted_at_ms INTEGER NOT NULL)",
		);
		// Recent grants: the status shows the last minutes; the budget counts the last minute's as
		// maybe not counted by Discord yet. `recent_grant` (timestamps only) is what it replaces.
		this.#sql.exec(
			"CREATE TABLE IF NOT EXISTS grant_history (granted_at_ms INTEGER NOT NULL, bucket INTEGER NOT NULL, shard INTEGER)",
		);
		storage.transactionSync(() => {
			const legacy = this.#sql.exec("SELECT name FROM sqlite_master WHERE name = 'recent_grant'").toArray();
			if (legacy.length === 0) return;
			this.#sql.exec("INSERT INTO grant_history SELECT granted_at_ms, 0, NULL FROM recent_grant");
			this.#sql.exec("DROP TABLE recent_grant");
		});
		// The waiting line: a place per shard (or per ticket), its arrival order and its request, without token.
		this.#sql.exec(
			"CREATE TABLE IF NOT EXISTS waiting_place (place_key TEXT PRIMARY KEY, arrival INTEGER NOT NULL, waiter TEXT NOT NULL)",
		);
	}

	load(): StoredQueue {
		const kv = this.#storage.kv;
		return {
			maxConcurrency: kv.get<number>(keys.pacingConcurrency),
			lastGrants: this.#sql
				.exec<{ bucket: number; granted_at_ms: number }>("SELECT bucket, granted_at_ms FROM bucket_grant")
				.toArray()
				.map((row) => [row.bucket, row.granted_at_ms]),
			metrics: kv.get<QueueMetrics>(keys.metrics),
			gatewayBot: kv.get<GatewayBot>(keys.gatewayBot),
			nextRefreshAtMs: kv.get<number>(keys.nextRefreshAt) ?? 0,
			tokenRejected: kv.get<boolean>(keys.tokenRejected) ?? false,
			budget: kv.get<StoredBudget>(keys.sessionBudget),
		};
	}

	/** The persisted waiting line, read once after a restart. */
	places(): SavedPlace<QueueWaiter>[] {
		return this.#sql
			.exec<{ place_key: string; arrival: number; waiter: string }>(
				"SELECT place_key, arrival, waiter FROM waiting_place",
			)
			.toArray()
			.map((row) => ({ key: row.place_key, order: row.arrival, waiter: JSON.parse(row.waiter) }));
	}

	/** The newest `limit` grants since `sinceMs`, oldest first. */
	recentGrants(sinceMs: number, limit: number): RecentGrant[] {
		return this.#sql
			.exec<{ granted_at_ms: number; bucket: number; shard: number | null }>(
				"SELECT granted_at_ms, bucket, shard FROM grant_history WHERE granted_at_ms >= ? ORDER BY rowid DESC LIMIT ?",
				sinceMs,
				limit,
			)
			.toArray()
			.reverse()
			.map((row) => ({ atMs: row.granted_at_ms, bucket: row.bucket, shard: row.shard }));
	}

	grantsSince(sinceMs: number): number {
		return this.#sql
			.exec<{ count: number }>("SELECT COUNT(*) AS count FROM grant_history WHERE granted_at_ms >= ?", sinceMs)
			.one().count;
	}

	/**
	 * The spacing, the budget spent, the history, the line and the counters of one
	 * round: a statement per table, whatever the number of grants (rows go in as one JSON array).
	 */
	writeRound({ grants, budget, places, metrics, forgetGrantsBeforeMs }: RoundWrite): void {
		this.#write(() => {
			if (grants.length > 0) {
				const rows = JSON.stringify(
					grants.map(({ bucket, grantedAtMs, waiter }) => [grantedAtMs, bucket, waiter.shard]),
				);
				this.#sql.exec(
					"INSERT OR REPLACE INTO bucket_grant (bucket, granted_at_ms) SELECT value ->> 1, value ->> 0 FROM json_each(?)",
					rows,
				);
				this.#sql.exec(
					"INSERT INTO grant_history (granted_at_ms, bucket, shard) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
					rows,
				);
				if (budget) this.#storage.kv.put(keys.sessionBudget, budget);
				if (forgetGrantsBeforeMs - this.#prunedBeforeMs >= historyPruneIntervalMs) {
					this.#sql.exec("DELETE FROM grant_history WHERE granted_at_ms <= ?", forgetGrantsBeforeMs);
					this.#prunedBeforeMs = forgetGrantsBeforeMs;
				}
			}
			this.#writePlaces(places);
			if (metrics) this.#storage.kv.put(keys.metrics, metrics);
		});
	}

	/** A grant taken back: its bucket's previous grant, its history row gone, its start back, its place back in line. */
	writeHandBack({
		grant,
		budget,
		places,
		metrics,
	}: Omit<RoundWrite, "grants" | "forgetGrantsBeforeMs"> & { grant: Grant<QueueWaiter> }): void {
		this.#write(() => {
			if (grant.previousGrantAtMs === undefined)
				this.#sql.exec("DELETE FROM bucket_grant WHERE bucket = ?", grant.bucket);
			else {
				this.#sql.exec(
					"INSERT OR REPLACE INTO bucket_grant (bucket, granted_at_ms) VALUES (?, ?)",
					grant.bucket,
					grant.previousGrantAtMs,
				);
			}
			this.#sql.exec(
				"DELETE FROM grant_history WHERE rowid IN (SELECT rowid FROM grant_history WHERE granted_at_ms = ? AND bucket = ? LIMIT 1)",
				grant.grantedAtMs,
				grant.bucket,
			);
			if (budget) this.#storage.kv.put(keys.sessionBudget, budget);
			this.#writePlaces(places);
			if (metrics) this.#storage.kv.put(keys.metrics, metrics);
		});
	}

	/** A new number of buckets, with the last grants re-bucketed for it. */
	writeConcurrency(maxConcurrency: number, lastGrants: Iterable<readonly [number, number]>): void {
		this.#write(() => {
			this.#storage.kv.put(keys.pacingConcurrency, maxConcurrency);
			this.#sql.exec("DELETE FROM bucket_grant");
			for (const [bucket, grantedAtMs] of lastGrants) {
				this.#sql.exec("INSERT INTO bucket_grant (bucket, granted_at_ms) VALUES (?, ?)", bucket, grantedAtMs);
			}
		});
	}

	/** What Discord's answer changed: all of it, or (a rejected token) the bot forgotten and its line emptied. */
	writeSync(sync: StoredSync, places: readonly PlaceChange<QueueWaiter>[], metrics: QueueMetrics | undefined): void {
		this.#write(() => {
			const kv = this.#storage.kv;
			kv.put(keys.nextRefreshAt, sync.nextRefreshAtMs);
			if (sync.gatewayBot) kv.put(keys.gatewayBot, sync.gatewayBot);
			else kv.delete(keys.gatewayBot);
			if (sync.budget) kv.put(keys.sessionBudget, sync.budget);
			else kv.delete(keys.sessionBudget);
			if (sync.tokenRejected) kv.put(keys.tokenRejected, true);
			else kv.delete(keys.tokenRejected);
			this.#writePlaces(places);
			if (metrics) kv.put(keys.metrics, metrics);
		});
	}

	async setAlarm(atMs: number | null): Promise<void> {
		try {
			if (atMs === null) await this.#storage.deleteAlarm();
			else await this.#storage.setAlarm(atMs);
		} catch (error) {
			this.#onFailure(error);
		}
	}

	#writePlaces(changes: readonly PlaceChange<QueueWaiter>[]): void {
		const saved = changes.flatMap(({ key, place }) =>
			place ? [[key, place.order, JSON.stringify(place.waiter)]] : [],
		);
		const deleted = changes.flatMap(({ key, place }) => (place ? [] : [key]));
		if (saved.length > 0) {
			this.#sql.exec(
				"INSERT OR REPLACE INTO waiting_place (place_key, arrival, waiter) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
				JSON.stringify(saved),
			);
		}
		if (deleted.length > 0) {
			this.#sql.exec(
				"DELETE FROM waiting_place WHERE place_key IN (SELECT value FROM json_each(?))",
				JSON.stringify(deleted),
			);
		}
	}

	/**
	 * Writes join the turn's implicit transaction rather than commit one of their
	 * own: what the turn writes (a round's rows and its alarm, the places of the
	 * requests that arrived together) is committed at once, atomically, and no
	 * response leaves before (output gate). A write that throws resets the object,
	 * and a reset object commits nothing of that turn.
	 */
	#write(write: () => void): void {
		try {
			write();
		} catch (error) {
			this.#onFailure(error);
		}
	}
}
