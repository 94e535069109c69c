/**
 * When the queue wakes up next: one alarm, and a timer beside it. Alarms fire a
 * few ms late; the timer grants on time while the object is alive, and the
 * alarm stays the backstop after an eviction. Whichever fires first wakes the
 * queue; the other finds nothing due (and a timer that fires early grants
 * nothing and is armed again).
 */
import type { QueueStorage } from "./storage";

/** workerd's timers fire 1-2 ms late: the timer is armed this much early. */
export const timerLeadMs = 2;

/** Starts a timer; returns what clears it. Replaced in tests by a timer fired by hand. */
export type SetTimer = (callback: () => Promise<void>, delayMs: number) => () => void;

export const realTimer: SetTimer = (callback, delayMs) => {
	const timer = setTimeout(callback, delayMs);
	return () => clearTimeout(timer);
};

export class WakeUps {
	readonly #storage: QueueStorage;
	readonly #setTimer: () => SetTimer;
	readonly #wake: () => Promise<void>;
	/** `undefined` until first armed: the stored alarm is not known then. */
	#alarmAtMs: number | null | undefined;
	#timerAtMs: number | null = null;
	#clearTimer: (() => void) | undefined;

	/** `setTimer` is read at each arming, so a test can replace it on a live object. */
	constructor(storage: QueueStorage, setTimer: () => SetTimer, wake: () => Promise<void>) {
		this.#storage = storage;
		this.#setTimer = setTimer;
		this.#wake = wake;
	}

	/** The alarm has fired: it is no longer set. */
	alarmFired(): void {
		this.#alarmAtMs = null;
	}

	/** Keeps exactly one alarm and one timer, at `atMs`, and none when nothing is due. */
	async arm(atMs: number | null, nowMs: number): Promise<void> {
		this.#armTimer(atMs, nowMs);
		if (atMs === this.#alarmAtMs) return;
		this.#alarmAtMs = atMs;
		await this.#storage.setAlarm(atMs);
	}

	#armTimer(atMs: number | null, nowMs: number): void {
		if (atMs === this.#timerAtMs) return;
		this.#clearTimer?.();
		this.#clearTimer = undefined;
		this.#timerAtMs = atMs;
		if (atMs === null) return;
		this.#clearTimer = this.#setTimer()(
			async () => {
				this.#clearTimer = undefined;
				this.#timerAtMs = null;
				// A failure has reset the object and been logged; its alarm retries.
				await this.#wake().catch(() => undefined);
			},
			Math.max(0, atMs - nowMs - timerLeadMs),
		);
	}
}
