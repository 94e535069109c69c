import { ApiError } from "../../src/edge/errors";

export interface Refusal {
	code: string;
	message: string;
	status?: number;
}

/** What `run` gives: its value, or the code, message and status of the `ApiError` it throws (a marker code for any other error). */
export function outcomeOf<T>(run: () => T): { value: T } | Refusal {
	try {
		return { value: run() };
	} catch (error) {
		if (error instanceof ApiError) return { code: error.code, message: error.message, status: error.status };
		return { code: `not an ApiError: ${String(error)}`, message: "" };
	}
}

/** The `ApiError` that `run` throws, as its code, message and status; code `no error` when it throws none. */
export function errorOf(run: () => unknown): Refusal {
	const result = outcomeOf(run);
	return "code" in result ? result : { code: "no error", message: "" };
}
