/**
 * When the queue wakes up next: a timer, and an alarm behind it. The timer
 * grants on time while the object is alive (it holds every waiting request); the
 * alarm is the backstop for an object without them, evicted or restarted, which
 * still has places to drop or Discord to ask. It is set `alarmBackstopMs` after
 * the next wake-up and moved only when it falls outside that window, so a round
 * the timer makes neither sets it nor finds it firing beside it.
 */
import type { QueueStorage } from "./storage";

/** workerd's timers fire 1-2 ms late: the timer is armed this much early. */
export const timerLeadMs = 2;

/** How far behind the next wake-up the alarm may be: at most this late, never early. */
export const alarmBackstopMs = 1_000;

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

	/**
	 * Keeps one timer at `atMs` (or at `timerOnlyAtMs` when earlier) and the alarm
	 * within `alarmBackstopMs` after `atMs`; neither when nothing is due. What only
	 * the timer wakes for matters only while the object lives (unsaved changes
	 * held in memory), so it never moves the alarm.
	 */
	async arm(atMs: number | null, nowMs: number, timerOnlyAtMs?: number): Promise<void> {
		this.#armTimer(timerOnlyAtMs === undefined ? atMs : Math.min(atMs ?? timerOnlyAtMs, timerOnlyAtMs), nowMs);
		if (this.#alarmCovers(atMs)) return;
		this.#alarmAtMs = atMs === null ? null : atMs + alarmBackstopMs;
		await this.#storage.setAlarm(this.#alarmAtMs);
	}

	/** Whether the alarm set backs up a wake-up at `atMs`: not before it, at most `alarmBackstopMs` after. */
	#alarmCovers(atMs: number | null): boolean {
		const alarmAtMs = this.#alarmAtMs;
		if (atMs === null || alarmAtMs == null) return atMs === alarmAtMs;
		return alarmAtMs >= atMs && alarmAtMs <= atMs + alarmBackstopMs;
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
