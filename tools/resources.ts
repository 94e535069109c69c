/**
 * Servers, browsers and the like that a test file or script starts, stopped together: whatever
 * failed to start, everything that did start is stopped (`Promise.all` would lose the ones that
 * resolved before another rejected, and leave a `wrangler dev` running).
 */

export interface Starter<T> {
	start: () => Promise<T>;
	stop: (value: T) => Promise<void>;
}

export class Resources {
	#stops: (() => Promise<void>)[] = [];

	/** Starts one; it is stopped by `stopAll`. */
	async start<T>({ start, stop }: Starter<T>): Promise<T> {
		const value = await start();
		this.#stops.push(() => stop(value));
		return value;
	}

	/** Starts all at once; if any fails, stops every one started (here and before) and throws that failure. */
	async startAll<T extends readonly unknown[]>(starters: { [K in keyof T]: Starter<T[K]> }): Promise<T> {
		const results = await Promise.allSettled(starters.map((starter: Starter<unknown>) => this.start(starter)));
		const failed = results.find((result) => result.status === "rejected");
		if (failed) {
			await this.stopAll().catch(() => undefined);
			throw failed.reason;
		}
		return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
	}

	/** Stops everything started, the last first, each even when another's stop fails; then throws the first failure. */
	async stopAll(): Promise<void> {
		const stops = this.#stops.reverse();
		this.#stops = [];
		const failures: unknown[] = [];
		for (const stop of stops) await stop().catch((error: unknown) => failures.push(error));
		if (failures.length > 0) throw failures[0];
	}
}
