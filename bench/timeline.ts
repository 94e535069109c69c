/** The timeline picture of scenario 1, as SVG text: a panel per run, a lane per bucket, a tick per grant. */
import { byBucket, type GrantRecord } from "./analysis.ts";

export interface TimelinePanel {
	title: string;
	maxConcurrency: number;
	intervalMs: number;
	grants: GrantRecord[];
}

const width = 960;
const left = 150;
const right = 20;
const panelGap = 34;

export function timelineSvg(panels: TimelinePanel[]): string {
	const parts: string[] = [];
	let y = 30;
	parts.push(
		`<text x="10" y="18" font-size="13" font-weight="bold">Grants per bucket (tick) against the legal schedule (grey lines: first grant + k × interval)</text>`,
	);
	for (const panel of panels) {
		const laneHeight = Math.max(4, Math.min(14, Math.floor(120 / panel.maxConcurrency)));
		const firstMs = Math.min(...panel.grants.map((grant) => grant.grantedAtMs));
		const spanMs = Math.max(...panel.grants.map((grant) => grant.grantedAtMs)) - firstMs || panel.intervalMs;
		const xOf = (ms: number) => left + ((ms - firstMs) / spanMs) * (width - left - right);
		const height = laneHeight * panel.maxConcurrency;
		parts.push(`<text x="10" y="${y + 12}" font-size="12">${escapeXml(panel.title)}</text>`);
		parts.push(
			`<text x="10" y="${y + 27}" font-size="10" fill="#555">${panel.maxConcurrency} lane(s), ${spanMs} ms</text>`,
		);
		for (let atMs = firstMs; atMs <= firstMs + spanMs; atMs += panel.intervalMs) {
			const x = xOf(atMs).toFixed(1);
			parts.push(`<line x1="${x}" y1="${y}" x2="${x}" y2="${y + height}" stroke="#ddd" stroke-width="1"/>`);
		}
		for (const [bucket, line] of byBucket(panel.grants)) {
			const laneY = y + bucket * laneHeight;
			for (const grant of line) {
				const x = xOf(grant.grantedAtMs).toFixed(1);
				parts.push(
					`<line x1="${x}" y1="${laneY + 1}" x2="${x}" y2="${laneY + laneHeight - 1}" stroke="#1f5fbf" stroke-width="1.5"/>`,
				);
			}
		}
		parts.push(
			`<rect x="${left}" y="${y}" width="${width - left - right}" height="${height}" fill="none" stroke="#999"/>`,
		);
		y += Math.max(height, 30) + panelGap;
	}
	return [
		`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">`,
		`<rect width="100%" height="100%" fill="white"/>`,
		...parts,
		"</svg>",
		"",
	].join("\n");
}

function escapeXml(text: string): string {
	return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
