# Held until shard 7 may IDENTIFY; --retry waits out 429/503 with their Retry-After.
curl -sS --fail-with-body --retry 10 -H "Authorization: Bot $DISCORD_TOKEN" \
  "https://gateway-queue.example.workers.dev/mybot?shard=7"
