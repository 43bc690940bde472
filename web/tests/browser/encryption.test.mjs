// An encrypted show (HLS AES-128, the demo's `demo-aes` copy made by `usher demo` with ffmpeg): hls.js
// fetches each content key from Usher with the page's seat cookie and plays real pictures, across a key
// rotation; once a second device takes the seat, the first one's key requests are refused (403
// `superseded`) and its page says playback moved, while the new seat's keys keep coming.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket,
  waitForState, waitForPlayback, waitInPage, frameStats, statusText,
} from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ deadlineMs: 60000 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Records the page's key requests: [{url, status}]. */
function watchKeys(page) {
  const seen = [];
  page.on('response', (res) => {
    if (new URL(res.url()).pathname.startsWith('/keys/')) seen.push({ url: res.url(), status: res.status() });
  });
  return seen;
}

test('an encrypted show plays with keys only the seat holder gets', async () => {
  assert.equal(server.encrypted_show_id, 'demo-aes',
    `usher demo made no encrypted variant (is ffmpeg installed?): ${server.stderr().slice(-2000)}`);
  const show = await createShow(server, { streamPath: 'demo-aes', encryption: 'aes-128', title: 'Encrypted' });
  const ticket = await createTicket(server, show.id);
  const first = await openDevice(browser);
  const second = await openDevice(browser);
  try {
    const firstKeys = watchKeys(first.page);
    await first.page.goto(ticket.watch_url);
    await waitForPlayback(first.page, 2);
    const frame = await frameStats(first.page);
    assert.ok(frame.mean > 16 && frame.max - frame.min > 8, `decrypted pictures, not black: ${JSON.stringify(frame)}`);
    assert.ok(firstKeys.length >= 1, 'hls.js fetched a key from Usher');
    assert.ok(firstKeys.every((k) => k.status === 200), `every key request served: ${JSON.stringify(firstKeys)}`);
    const keyUrl = new URL(firstKeys[0].url);
    assert.equal(keyUrl.origin, server.base, 'key URIs point at Usher');

    // past the first key's 8 segments (16 s): the next key is fetched and playback goes on
    await first.page.evaluate(() => { document.getElementById('player').currentTime = 20; });
    await waitInPage(first.page, 'playback past 21 s', () => {
      const v = document.getElementById('player');
      return !v.paused && v.currentTime > 21;
    }, undefined, 30000);
    const distinct = new Set(firstKeys.map((k) => new URL(k.url).pathname));
    assert.ok(distinct.size >= 2, `a second key after the rotation: ${[...distinct].join(', ')}`);

    // a second device takes the seat
    const secondKeys = watchKeys(second.page);
    await second.page.goto(ticket.watch_url);
    await waitForPlayback(second.page, 2);
    assert.ok(secondKeys.length >= 1 && secondKeys.every((k) => k.status === 200), JSON.stringify(secondKeys));
    // the first device's seat cookie no longer opens a key, whatever it still holds in its buffer
    const refused = await first.page.evaluate(async (path) => {
      const res = await fetch(path, { credentials: 'same-origin' });
      return { status: res.status, body: await res.json().catch(() => null) };
    }, keyUrl.pathname);
    assert.equal(refused.status, 403);
    assert.equal(refused.body && refused.body.code, 'superseded');
    await waitForState(first.page, 'superseded', 8000);
    assert.match(await statusText(first.page), /moved to another device/i);
    assert.deepEqual([...first.page.pageErrors, ...second.page.pageErrors], []);
  } finally {
    await first.context.close();
    await second.context.close();
  }
});
