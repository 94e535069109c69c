import { runInDurableObject } from "cloudflare:test";
import type { GatewayQueue } from "../../src/object/gateway-queue";
import type { QueueStub } from "./queue";

export interface StorageDump {
	kv: [string, unknown][];
	/** Rows of the object's own SQL tables (`_cf_*` ones, such as the KV table, are not readable by SQL). */
	tables: Record<string, Record<string, SqlStorageValue>[]>;
	alarmAtMs: number | null;
	waiting: number;
}

/** Everything a queue object keeps: its KV entries, its SQL rows, its alarm, and how many wait in memory. */
export async function storageDump(stub: QueueStub): Promise<StorageDump> {
	return runInDurableObject(stub, async (queue: GatewayQueue, state) => {
		const sql = state.storage.sql;
		const names = sql
			.exec<{ name: string }>(
				"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
			)
			.toArray()
			.map((row) => row.name);
		const tables = Object.fromEntries(names.map((name) => [name, sql.exec(`SELECT * FROM "${name}"`).toArray()]));
		return {
			kv: [...state.storage.kv.list()],
			tables,
			alarmAtMs: await state.storage.getAlarm(),
			waiting: queue.pacer.waitingCount,
		};
	});
}
