#!/usr/bin/env bash
# The ticket site's calls with curl: register one ticket, register a batch, look a ticket up (by id and
# by your own order reference), revoke it. USHER_URL, USHER_KEY (a key with the `tickets` scope) and
# SHOW_ID come from the environment. An Idempotency-Key makes a retry after a timeout safe: the same key
# and body get the first answer again instead of a second ticket.
set -euo pipefail
: "${USHER_URL:?}" "${USHER_KEY:?}" "${SHOW_ID:?}"
auth=(-H "Authorization: Bearer $USHER_KEY" -H "Content-Type: application/json")
order="order-$RANDOM$RANDOM"

# register one ticket (201; the answer has its id, token and watch_url)
ticket=$(curl -sSf "${auth[@]}" -H "Idempotency-Key: $order" \
  -d "{\"show_id\": \"$SHOW_ID\", \"external_ref\": \"$order\"}" "$USHER_URL/api/v1/tickets")
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$ticket")
echo "registered $id"

# register many at once (one durable write; a token already registered comes back as `existing`)
curl -sSf "${auth[@]}" -d "{\"tickets\": [{\"show_id\": \"$SHOW_ID\"}, {\"show_id\": \"$SHOW_ID\"}]}" \
  "$USHER_URL/api/v1/tickets/batch" | python3 -c 'import json,sys; print("batch created", json.load(sys.stdin)["created"])'

# look it up: status and usage, by id and by your order reference
curl -sSf "${auth[@]}" "$USHER_URL/api/v1/tickets/$id" | python3 -c 'import json,sys; print("status", json.load(sys.stdin)["status"])'
curl -sSf "${auth[@]}" "$USHER_URL/api/v1/tickets?q=$order" | python3 -c 'import json,sys; print("found", len(json.load(sys.stdin)["tickets"]))'

# refund: revoke (its sessions stop at their next heartbeat)
curl -sSf "${auth[@]}" -X POST "$USHER_URL/api/v1/tickets/$id/revoke" | python3 -c 'import json,sys; print("status", json.load(sys.stdin)["status"])'
