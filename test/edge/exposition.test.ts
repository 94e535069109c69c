import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { contentTypes, exposition, formatFor, type MetricFamily } from "../../src/edge/exposition";

const families: MetricFamily[] = [
	{ name: "q_waiting", help: "Waiting.", type: "gauge", samples: [{ labels: { queue: "a" }, value: 3 }] },
	{
		name: "q_requests",
		help: "Requests by outcome.",
		type: "counter",
		samples: [
			{ labels: { queue: "a", outcome: "granted" }, value: 7 },
			{ labels: { queue: "a", outcome: "cancelled" }, value: 1 },
		],
	},
	{
		name: "q_wait_seconds",
		help: "Waits.",
		type: "histogram",
		unit: "seconds",
		labels: { queue: "a" },
		bounds: [0.1, 1],
		counts: [2, 3, 1],
		sum: 4.25,
	},
	{
		name: "q_start_time_seconds",
		help: "Start.",
		type: "gauge",
		unit: "seconds",
		samples: [{ labels: {}, value: 1.5e9 }],
	},
];

describe("exposition, the Prometheus text format", () => {
	it("parses back with a Prometheus parser: counters named _total, cumulative buckets, sum and count", () => {
		const parsed = parsePrometheusTextFormat(exposition(families, "prometheus"));
		expect(parsed).toEqual([
			{ name: "q_waiting", help: "Waiting.", type: "GAUGE", metrics: [{ value: "3", labels: { queue: "a" } }] },
			{
				name: "q_requests_total",
				help: "Requests by outcome.",
				type: "COUNTER",
				metrics: [
					{ value: "7", labels: { queue: "a", outcome: "granted" } },
					{ value: "1", labels: { queue: "a", outcome: "cancelled" } },
				],
			},
			{
				name: "q_wait_seconds",
				help: "Waits.",
				type: "HISTOGRAM",
				// This parser drops a labelled histogram's sum and count (checked as text below).
				metrics: [{ buckets: { "0.1": "2", "1": "5", "+Inf": "6" } }],
			},
			{ name: "q_start_time_seconds", help: "Start.", type: "GAUGE", metrics: [{ value: "1500000000" }] },
		]);
		const text = exposition(families, "prometheus");
		expect(text).toContain('q_wait_seconds_sum{queue="a"} 4.25\nq_wait_seconds_count{queue="a"} 6\n');
	});

	it("escapes label values and help texts", () => {
		const odd: MetricFamily = {
			name: "q_odd",
			help: "A \\ and a\nnewline.",
			type: "gauge",
			samples: [{ labels: { queue: 'a"b\\c\nd' }, value: 1 }],
		};
		const text = exposition([odd], "prometheus");
		expect(text).toContain('q_odd{queue="a\\"b\\\\c\\nd"} 1');
		expect(parsePrometheusTextFormat(text)[0]?.metrics[0]?.labels).toEqual({ queue: 'a"b\\c\nd' });
	});

	it("writes OpenMetrics when asked: counter families without _total, units, and # EOF", () => {
		const text = exposition(families, "openmetrics");
		expect(text).toContain("# TYPE q_requests counter\n");
		expect(text).toContain('q_requests_total{queue="a",outcome="granted"} 7\n');
		expect(text).toContain("# UNIT q_wait_seconds seconds\n");
		expect(text.endsWith("# EOF\n")).toBe(true);
		expect(exposition(families, "prometheus")).not.toContain("# EOF");
	});

	it("chooses OpenMetrics from Accept as Prometheus sends it, else the classic format", () => {
		const prometheus =
			"application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
		expect(formatFor(prometheus)).toBe("openmetrics");
		expect(formatFor("text/plain")).toBe("prometheus");
		expect(formatFor(undefined)).toBe("prometheus");
		expect(contentTypes.prometheus).toBe("text/plain; version=0.0.4; charset=utf-8");
	});
});
