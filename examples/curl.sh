# Held until shard 7 may IDENTIFY (without Gateway-Queue-Refusals, never refused: a deploy or a full queue holds it).
# --retry only helps when the connection itself fails.
curl -sS --fail-with-body --retry 10 -H "Authorization: Bot $DISCORD_TOKEN" \
  "https://gateway-queue.example.workers.dev/mybot?shard=7"
