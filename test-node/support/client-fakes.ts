/** A fetch whose requests the test answers one by one, and delays the test ends by hand: no wall-clock waits. */

export interface FakeRequest {
	url: URL;
	headers: Headers;
	redirect: RequestInit["redirect"];
	signal: AbortSignal;
	/** Answers with `body` as JSON, or as it is when it is a string. */
	respond(status: number, body?: unknown, headers?: Record<string, string>): void;
	fail(error?: Error): void;
}

export function fakeFetch() {
	const requests: FakeRequest[] = [];
	const fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
		new Promise((resolve, reject) => {
			const signal = init?.signal ?? new AbortController().signal;
			// As the real fetch: an abort rejects with the signal's reason.
			signal.addEventListener("abort", () => reject(signal.reason), { once: true });
			requests.push({
				url: new URL(input instanceof Request ? input.url : input),
				headers: new Headers(init?.headers),
				redirect: init?.redirect,
				signal,
				respond: (status, body, headers) =>
					resolve(
						new Response(body === undefined ? null : typeof body === "string" ? body : JSON.stringify(body), {
							status,
							headers: { "content-type": "application/json", ...headers },
						}),
					),
				fail: (error = new TypeError("fetch failed")) => reject(error),
			});
		});
	return { fetch: fetch as typeof globalThis.fetch, requests };
}

export interface PendingDelay {
	ms: number;
	signal: AbortSignal;
	elapse(): void;
}

/** Delays that end only when the test calls `elapse` (or their signal aborts). */
export function fakeDelays() {
	const pending: PendingDelay[] = [];
	const delay = (ms: number, signal: AbortSignal): Promise<void> =>
		new Promise((resolve) => {
			const entry: PendingDelay = {
				ms,
				signal,
				elapse: () => {
					const index = pending.indexOf(entry);
					if (index !== -1) pending.splice(index, 1);
					resolve();
				},
			};
			pending.push(entry);
			signal.addEventListener("abort", () => entry.elapse(), { once: true });
		});
	/** Ends the pending delay of `ms`, failing if there is none. */
	const elapse = (ms: number) => {
		const entry = pending.find((candidate) => candidate.ms === ms);
		if (!entry) throw new Error(`no pending delay of ${ms} ms; pending: ${pending.map((p) => p.ms).join(", ")}`);
		entry.elapse();
	};
	return { delay, pending, elapse };
}

/** Lets every promise reaction and I/O callback that is ready run. */
export async function settle(): Promise<void> {
	for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
}

export const grantBody = {
	message: "You're free to connect now! :)",
	shard: 3,
	bucket: 1,
	waited_ms: 12,
	granted_at: 1_700_000_000_000,
};

export function errorBody(code: string, message = code) {
	return { error: code, message };
}
