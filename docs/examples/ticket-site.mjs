// The ticket site's calls from JavaScript (Node 18+ or a browser's fetch on your server side — never put
// an API key in a page): register, batch, look up, revoke. USHER_URL, USHER_KEY (a key with the
// `tickets` scope) and SHOW_ID come from the environment.
import { randomUUID } from 'node:crypto';

const { USHER_URL, USHER_KEY, SHOW_ID } = process.env;

async function call(method, path, body, idempotencyKey) {
  const headers = { authorization: `Bearer ${USHER_KEY}`, 'content-type': 'application/json' };
  // the same key and body get the first answer again: retry a timed-out call with the same key
  if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
  const res = await fetch(USHER_URL + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() }; // errors are problem+json: act on body.code
}

const order = `order-${randomUUID().slice(0, 12)}`;
const key = randomUUID();
const made = await call('POST', '/api/v1/tickets', { show_id: SHOW_ID, external_ref: order }, key);
if (made.status !== 201) throw new Error(`register: ${made.status} ${JSON.stringify(made.body)}`);
const retry = await call('POST', '/api/v1/tickets', { show_id: SHOW_ID, external_ref: order }, key);
if (retry.body.id !== made.body.id) throw new Error('a retry with the same key is the first answer');
console.log('registered', made.body.id, 'watch at', made.body.watch_url);

const batch = await call('POST', '/api/v1/tickets/batch', { tickets: [{ show_id: SHOW_ID }, { show_id: SHOW_ID }] });
console.log('batch created', batch.body.created);

const found = await call('GET', `/api/v1/tickets/${made.body.id}`);
console.log('status', found.body.status);
const search = await call('GET', `/api/v1/tickets?q=${encodeURIComponent(order)}`);
console.log('found', search.body.tickets.length);

const revoked = await call('POST', `/api/v1/tickets/${made.body.id}/revoke`);
console.log('status', revoked.body.status);
