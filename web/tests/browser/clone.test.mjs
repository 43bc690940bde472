// One ticket, one browser's cookie jar copied into a second browser (a shared session): within two
// heartbeat intervals exactly one of them still plays and the other says, in plain words, that a copy of
// this player is playing elsewhere; a reload of the one still playing keeps playing (a reload is not a
// clone). DESIGN.md "Session integrity".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket,
  waitForPlayback, waitInPage, statusText, ticketUsage, describe,
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

// Heartbeats come every 2 s: two intervals, plus page and network slack.
const TWO_HEARTBEATS_MS = 2 * 2000 + 6000;

const state = (page) => page.evaluate(() => document.body.dataset.state);

test('a copied cookie jar: exactly one player plays on, the other is told why; a reload plays on', async () => {
  const show = await createShow(server, { policy: 'newest_wins' });
  const ticket = await createTicket(server, show.id);
  const first = await openDevice(browser);
  const copy = await openDevice(browser);
  try {
    await first.page.goto(ticket.watch_url);
    await waitForPlayback(first.page, 1);

    // the sharer copies every cookie (ticket, device, seat) into another browser and opens the page
    const cookies = await first.context.cookies();
    assert.ok(cookies.some((c) => c.name === 'usher_seat' && c.httpOnly), 'the seat cookie is HttpOnly');
    await copy.context.addCookies(cookies);
    const watchPage = new URL('/watch', ticket.watch_url).href;
    await copy.page.goto(watchPage);

    // within two heartbeat intervals one of them is stopped with the clone message
    const deadline = Date.now() + TWO_HEARTBEATS_MS + 15000;
    let states = [];
    while (Date.now() < deadline) {
      states = [await state(first.page), await state(copy.page)];
      if (states.includes('superseded')) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const stopped = states.indexOf('superseded');
    assert.notEqual(stopped, -1, `one player is stopped: ${states} ${await describe(first.page)} ${await describe(copy.page)}`);
    const [loser, winner] = stopped === 0 ? [first, copy] : [copy, first];
    assert.match(await statusText(loser.page), /another player that copied this one/i);
    const loserStopped = await loser.page.evaluate(() => {
      const v = document.getElementById('player');
      return v.paused && !v.getAttribute('src');
    });
    assert.ok(loserStopped, 'the copy is stopped');
    // the other plays on, across more heartbeats
    await waitForPlayback(winner.page, 2);
    await new Promise((r) => setTimeout(r, 4500));
    assert.equal(await state(winner.page), 'playing', await describe(winner.page));
    assert.equal(await state(loser.page), 'superseded');

    // the usage says so
    const usage = await ticketUsage(server, ticket.id);
    assert.ok(usage.usage.clones >= 1, JSON.stringify(usage.usage));
    assert.equal(usage.sharing.level, 'high');

    // a reload of the one still playing is the same player: it plays on
    await winner.page.reload();
    await waitForPlayback(winner.page, 1);
    await new Promise((r) => setTimeout(r, 4500));
    assert.equal(await state(winner.page), 'playing', await describe(winner.page));
    await waitInPage(winner.page, 'still playing', () => !document.getElementById('player').paused);
    assert.deepEqual([...first.page.pageErrors, ...copy.page.pageErrors], []);
  } finally {
    await first.context.close();
    await copy.context.close();
  }
});
