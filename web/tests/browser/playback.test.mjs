// The player plays: real frames from the real server, and a reload on the same device is not a second device.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  LOCAL_ASSETS, startServer, launchBrowser, openDevice, createShow, createTicket, ticketUsage,
  waitInPage, waitForPlayback, frameStats, statusText,
} from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the server serves the assets built in web/dist', async (t) => {
  if (LOCAL_ASSETS) {
    t.skip('USHER_TEST_LOCAL_ASSETS=1: the browser gets web/dist directly, not the binary\'s copy');
    return;
  }
  for (const name of ['watch.js', 'watch.css']) {
    const res = await fetch(`${server.base}/assets/${name}`);
    assert.equal(res.status, 200, `GET /assets/${name}`);
    const served = await res.text();
    const built = await readFile(new URL(`../../dist/${name}`, import.meta.url), 'utf8');
    assert.ok(served === built, `/assets/${name} differs from web/dist/${name}: rebuild usher after scripts/build-web.sh`);
  }
});

test('the player plays the show with real pictures', async () => {
  const show = await createShow(server, { title: 'Plays <for> "real"' });
  const ticket = await createTicket(server, show.id);
  const { context, page } = await openDevice(browser);
  try {
    await page.goto(ticket.watch_url);
    assert.equal(new URL(page.url()).pathname, '/watch', 'the token leaves the address bar');
    assert.equal(await page.locator('#title').innerText(), show.title);

    await waitInPage(page, 'currentTime > 3 s while playing', () => {
      const v = document.getElementById('player');
      return document.body.dataset.state === 'playing' && !v.paused && v.currentTime > 3;
    }, undefined, 30000);
    const frame = await frameStats(page);
    assert.ok(frame.width > 0 && frame.height > 0, `the video has a size: ${JSON.stringify(frame)}`);
    assert.ok(frame.mean > 16 && frame.max - frame.min > 8, `the frame is not black: ${JSON.stringify(frame)}`);
    assert.match(await statusText(page), /playing/i);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await context.close();
  }
});

test('a reload on the same device keeps playing and counts one device', async () => {
  const show = await createShow(server);
  const ticket = await createTicket(server, show.id);
  const { context, page } = await openDevice(browser);
  try {
    await page.goto(ticket.watch_url);
    await waitForPlayback(page, 1.5);
    await page.reload();
    await waitForPlayback(page, 1.5);
    // Two more heartbeats (2 s apart): still playing, so the reload did not supersede itself.
    await waitForPlayback(page, 4.5);

    const usage = await ticketUsage(server, ticket.id);
    assert.ok(usage.usage, `ticket has usage: ${JSON.stringify(usage)}`);
    assert.equal(usage.usage.devices, 1, `one device: ${JSON.stringify(usage.usage)}`);
    assert.ok(usage.usage.sessions >= 1, `sessions counted: ${JSON.stringify(usage.usage)}`);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await context.close();
  }
});
