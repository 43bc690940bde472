// A webhook receiver for Node (no packages): checks `Usher-Signature` in constant time and its time, drops
// an event id it has seen (delivery is at least once), answers 2xx fast.
// Run: WEBHOOK_SECRET=whsec_… node receive-webhook.mjs 8080
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const secret = process.env.WEBHOOK_SECRET;
const seen = new Set(); // use your database in production: a unique index on the event id

export function verify(secret, header, body, toleranceS = 300) {
  const parts = Object.fromEntries((header || '').split(',').map((p) => p.split(/=(.*)/s).slice(0, 2)));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected)
    && Math.abs(Date.now() / 1000 - t) <= toleranceS;
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (!verify(secret, req.headers['usher-signature'], body)) {
      res.writeHead(400).end();
      return;
    }
    const event = JSON.parse(body);
    res.writeHead(204).end();
    if (seen.has(event.id)) return;
    seen.add(event.id);
    console.log('verified', event.type, event.id, JSON.stringify(event.data));
  });
});
server.listen(Number(process.argv[2] || 8080), '127.0.0.1', () => console.log('listening', server.address().port));
