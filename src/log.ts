/** What a caught value says, for a log line. */
export function errorMessage(error: unknown): string {
	return error instanceof Error ? error.message : String(error);
}

type LogValue = string | number | boolean | null | undefined;

/** One JSON line per event, for Workers Logs. Callers pass no secrets: tokens never reach here. */
export function log(event: string, fields: Record<string, LogValue | readonly LogValue[]>): void {
	console.log(JSON.stringify({ event, ...fields }));
}
