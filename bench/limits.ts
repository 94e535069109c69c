/**
 * Open files: every held HTTP request is a socket in the bench and, in workerd,
 * two descriptors (the accepted socket and a dup of it). Node raises its own
 * soft limit to the hard one at start-up, and the servers the bench starts
 * inherit it; the hard limit (raised only with CAP_SYS_RESOURCE, e.g. `prlimit
 * --nofile` as a privileged user, or `LimitNOFILE=` of a unit) sizes the largest burst.
 */
import { readFileSync } from "node:fs";

export interface OpenFileLimit {
	soft: number;
	hard: number;
}

/** This process's `Max open files`, from /proc (Linux); unlimited reads as +Infinity. */
export function openFileLimit(): OpenFileLimit | undefined {
	try {
		const line = readFileSync("/proc/self/limits", "utf8")
			.split("\n")
			.find((entry) => entry.startsWith("Max open files"));
		const [soft, hard] = (line?.match(/\s(\d+|unlimited)\s+(\d+|unlimited)\s/)?.slice(1) ?? []).map((value) =>
			value === "unlimited" ? Number.POSITIVE_INFINITY : Number(value),
		);
		return soft === undefined || hard === undefined ? undefined : { soft, hard };
	} catch {
		return undefined;
	}
}

/** Descriptors of workerd per held HTTP request (measured: 6,022 open with 3,000 connections, 22 idle). */
export const workerdFilesPerConnection = 2;
/** workerd's own descriptors, the objects' SQLite files and the bench's polling, with room to spare. */
const reservedFiles = 400;

/** Open files one workerd process needs to hold `requests` HTTP requests. */
export function filesNeeded(requests: number): number {
	return requests * workerdFilesPerConnection + reservedFiles;
}

/** The most held HTTP requests one workerd process can take under `limit`, in hundreds. */
export function heldRequestsAllowed(limit: OpenFileLimit | undefined): number {
	if (!limit || !Number.isFinite(limit.soft)) return Number.POSITIVE_INFINITY;
	return Math.max(0, Math.floor((limit.soft - reservedFiles) / workerdFilesPerConnection / 100) * 100);
}
