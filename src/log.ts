/** What a caught value says, for a log line. */
export function errorMessage(error: unknown): string {
	return error instanceof Error ? error.message : String(error);
}

/** One JSON line per event, for Workers Logs. Callers pass no secrets: tokens never reach here. */
export function log(
	event: string,
	fields: Record<string, string | number | boolean | null | undefined | readonly (number | null)[]>,
): void {
	console.log(JSON.stringify({ event, ...fields }));
}
