/**
 * The requests in the object and how each is answered. A request is known by its
 * ticket: the same request calling again (the Worker past its deadline, or after
 * a restart of its own) shares the first call's answer.
 */
import type { AcquireResult } from "./rpc";

export interface Settled {
	shard: number | null;
	arrivedAtMs: number;
}

export class Waiters {
	/** The answer of each request in the object, by ticket. */
	readonly #answers = new Map<string, Promise<AcquireResult>>();
	/** How to answer each request in line, and what its log line needs. */
	readonly #settle = new Map<string, Settled & { resolve: (result: AcquireResult) => void }>();
	/** Requests waiting for the bot's first `/gateway/bot` answer, before they are in line. */
	readonly #arriving = new Set<string>();

	answerOf(ticket: string): Promise<AcquireResult> | undefined {
		return this.#answers.get(ticket);
	}

	/** Remembers a request's answer until it settles. */
	track(ticket: string, answer: Promise<AcquireResult>): Promise<AcquireResult> {
		this.#answers.set(ticket, answer);
		const forget = () => this.#answers.delete(ticket);
		answer.then(forget, forget);
		return answer;
	}

	/** A request in line: its answer comes with `resolve`. */
	wait(ticket: string, request: Settled): Promise<AcquireResult> {
		return new Promise((resolve) => this.#settle.set(ticket, { ...request, resolve }));
	}

	/** Answers a request in line; returns what it was, or `undefined` when it had been answered. */
	resolve(ticket: string, result: AcquireResult): Settled | undefined {
		const waiting = this.#settle.get(ticket);
		if (!waiting) return undefined;
		this.#settle.delete(ticket);
		waiting.resolve(result);
		return waiting;
	}

	get arrivingCount(): number {
		return this.#arriving.size;
	}

	arrive(ticket: string): void {
		this.#arriving.add(ticket);
	}

	/** Whether the request was still arriving (not cancelled meanwhile); it is no longer. */
	arrived(ticket: string): boolean {
		return this.#arriving.delete(ticket);
	}
}
