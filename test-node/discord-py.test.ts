/**
 * discord.py (Debian's python3-discord 2.2 and python3-aiohttp): the unit tests of
 * clients/python/gateway_queue.py, and end to end a real AutoShardedClient with GatewayQueueMixin,
 * 6 shards at max_concurrency 2, through the queue (`wrangler dev`) to the fake Discord, which
 * speaks zlib-stream as discord.py asks.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { expectPaced, queueAndDiscordForTests, token } from "./support/e2e.ts";
import { findDiscordPy, requireTool } from "./support/requirements.ts";

const python = requireTool(
	"discord.py",
	findDiscordPy(),
	"apt-get install python3-discord python3-aiohttp (Debian's /usr/bin/python3), or set PYTHON to a python3 that has discord.py 2 and aiohttp",
);
const run = promisify(execFile);
/** No __pycache__ left in the work tree. */
const env = { ...process.env, PYTHONDONTWRITEBYTECODE: "1" };
const root = join(import.meta.dirname, "..");
const maxConcurrency = 2;

describe.skipIf(python.missing)("discord.py", () => {
	const servers = queueAndDiscordForTests({ shards: 6, maxConcurrency });

	test("the Python module's unit tests pass", async () => {
		const { stderr } = await run(python.path ?? "", ["-m", "unittest", "-v", "test_gateway_queue"], {
			cwd: join(root, "clients", "python"),
			env,
			timeout: 60_000,
		});
		expect(stderr).toMatch(/\nOK\n?$/);
	});

	test("6 shards of an AutoShardedClient at max_concurrency 2 all get READY, each bucket's IDENTIFYs spaced", async (context) => {
		const before = servers.discord.identifies.length;
		const { stdout } = await run(python.path ?? "", [join(root, "test-node", "support", "discord_py_bot.py")], {
			env: {
				...env,
				API_URL: servers.discord.apiUrl,
				QUEUE_URL: `${servers.queue.url}/discord-py`,
				DISCORD_TOKEN: token,
			},
			timeout: 60_000,
		});
		expect(JSON.parse(stdout)).toEqual({ ready: [0, 1, 2, 3, 4, 5] });
		const identifies = servers.discord.identifies.slice(before);
		expect(identifies.map((identify) => identify.shard)).toEqual([0, 1, 2, 3, 4, 5]);
		expect(identifies.every((identify) => identify.compress === "zlib-stream")).toBe(true);
		// Each of them was granted by the queue (discord.py's own pacing would space them too, by 5 s).
		const status = await fetch(`${servers.queue.url}/_/queues/discord-py`, {
			headers: { authorization: `Bot ${token}` },
		});
		const { totals, recent_grants } = (await status.json()) as {
			totals: { granted: number };
			recent_grants: { shard: number }[];
		};
		expect(totals.granted).toBe(6);
		expect(recent_grants.map((grant) => grant.shard)).toEqual([0, 1, 2, 3, 4, 5]);
		await expectPaced(context, "discord.py, 6 shards", identifies, maxConcurrency);
	});
});
