/**
 * The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0, for the
 * few metric types the queue exposes. Pure; written here rather than taken from
 * prom-client, which needs Node.js and keeps a global registry.
 */

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
	labels: Labels;
	value: number;
}

interface FamilyBase {
	/** Without the `_total` of a counter's samples. */
	name: string;
	help: string;
	/** OpenMetrics' `# UNIT`; the name must end with it. */
	unit?: string;
}

export type MetricFamily =
	| (FamilyBase & { type: "gauge" | "counter"; samples: readonly Sample[] })
	| (FamilyBase & {
			type: "histogram";
			labels: Labels;
			/** Upper bounds, ascending; `+Inf` is added. */
			bounds: readonly number[];
			/** Observations per bound, not cumulative, and one more above the last. */
			counts: readonly number[];
			sum: number;
	  });

export type ExpositionFormat = "prometheus" | "openmetrics";

export const contentTypes: Record<ExpositionFormat, string> = {
	prometheus: "text/plain; version=0.0.4; charset=utf-8",
	openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
};

/** OpenMetrics when the scraper's `Accept` asks for it, as Prometheus does; else the classic text format. */
export function formatFor(accept: string | null | undefined): ExpositionFormat {
	return accept?.includes("application/openmetrics-text") ? "openmetrics" : "prometheus";
}

export function exposition(families: readonly MetricFamily[], format: ExpositionFormat): string {
	const lines: string[] = [];
	for (const family of families) {
		// The classic format names a counter's family as its samples are named.
		const familyName = family.type === "counter" && format === "prometheus" ? `${family.name}_total` : family.name;
		lines.push(`# HELP ${familyName} ${escapeHelp(family.help)}`, `# TYPE ${familyName} ${family.type}`);
		if (family.unit && format === "openmetrics") lines.push(`# UNIT ${familyName} ${family.unit}`);
		if (family.type === "histogram") {
			let cumulative = 0;
			family.bounds.forEach((bound, index) => {
				cumulative += family.counts[index] ?? 0;
				lines.push(sampleLine(`${family.name}_bucket`, { ...family.labels, le: number(bound) }, cumulative));
			});
			cumulative += family.counts[family.bounds.length] ?? 0;
			lines.push(sampleLine(`${family.name}_bucket`, { ...family.labels, le: "+Inf" }, cumulative));
			lines.push(sampleLine(`${family.name}_sum`, family.labels, family.sum));
			lines.push(sampleLine(`${family.name}_count`, family.labels, cumulative));
		} else {
			const sampleName = family.type === "counter" ? `${family.name}_total` : family.name;
			for (const sample of family.samples) lines.push(sampleLine(sampleName, sample.labels, sample.value));
		}
	}
	if (format === "openmetrics") lines.push("# EOF");
	return `${lines.join("\n")}\n`;
}

function sampleLine(name: string, labels: Labels, value: number): string {
	const pairs = Object.entries(labels).map(([label, text]) => `${label}="${escapeLabel(text)}"`);
	return `${name}${pairs.length > 0 ? `{${pairs.join(",")}}` : ""} ${number(value)}`;
}

function number(value: number): string {
	if (value === Number.POSITIVE_INFINITY) return "+Inf";
	if (value === Number.NEGATIVE_INFINITY) return "-Inf";
	return Number.isNaN(value) ? "NaN" : String(value);
}

const escapeLabel = (text: string) => text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
