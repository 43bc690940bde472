// Doors-open capacity (issue 20): with a show at its capacity, a newcomer's watch page shows its place in
// line (announced to screen readers by the notice's live region) and asks again at the interval the
// server says; when a seat frees it is let in and plays, without a click.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket,
  waitForState, waitForPlayback, statusText,
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

test('a newcomer waits in line while the show is full, then plays when a seat frees', async () => {
  const show = await createShow(server, { capacity: 1 });
  const inside = await createTicket(server, show.id);
  const outside = await createTicket(server, show.id);
  const first = await openDevice(browser);
  const second = await openDevice(browser);
  try {
    await first.page.goto(inside.watch_url);
    await waitForPlayback(first.page, 1);

    await second.page.goto(outside.watch_url);
    await waitForState(second.page, 'waiting');
    assert.match(await statusText(second.page), /next in line/i);
    assert.equal(await second.page.locator('.notice').getAttribute('aria-live'), 'polite');
    // the first viewer keeps playing: nobody inside is pushed out
    await waitForPlayback(first.page, 3);

    // the first viewer leaves (the page's leave beacon frees the seat): the waiter is let in
    await first.context.close();
    await waitForPlayback(second.page, 1, 30000);
    assert.deepEqual(second.page.pageErrors, []);
  } finally {
    await second.context.close().catch(() => {});
    await first.context.close().catch(() => {});
  }
});
