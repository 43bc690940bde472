"""The ticket site's calls from Python (standard library only): register, batch, look up, revoke.

USHER_URL, USHER_KEY (a key with the `tickets` scope) and SHOW_ID come from the environment.
"""
import json
import os
import urllib.error
import urllib.request
import uuid

URL, KEY, SHOW = os.environ["USHER_URL"], os.environ["USHER_KEY"], os.environ["SHOW_ID"]


def call(method, path, body=None, idempotency_key=None):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    if idempotency_key:
        # the same key and body get the first answer again: retry a timed-out call with the same key
        headers["Idempotency-Key"] = idempotency_key
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as e:
        problem = json.load(e)  # application/problem+json: act on problem["code"]
        return e.code, problem


order = f"order-{uuid.uuid4().hex[:12]}"
key = str(uuid.uuid4())
status, ticket = call("POST", "/api/v1/tickets", {"show_id": SHOW, "external_ref": order}, key)
assert status == 201, (status, ticket)
again, same = call("POST", "/api/v1/tickets", {"show_id": SHOW, "external_ref": order}, key)
assert (again, same["id"]) == (201, ticket["id"]), "a retry with the same key is the first answer"
print("registered", ticket["id"], "watch at", ticket["watch_url"])

status, batch = call("POST", "/api/v1/tickets/batch", {"tickets": [{"show_id": SHOW}] * 3})
print("batch created", batch["created"])

status, found = call("GET", f"/api/v1/tickets/{ticket['id']}")
print("status", found["status"], "played", found["usage"]["sessions"], "times")
status, search = call("GET", f"/api/v1/tickets?q={order}")
print("found", len(search["tickets"]))

status, revoked = call("POST", f"/api/v1/tickets/{ticket['id']}/revoke")
print("status", revoked["status"])

status, problem = call("GET", "/api/v1/tickets/t_000000000000000000000000")
print("unknown", status, problem.get("code"))
