// Refusals in plain words: a revoked ticket stops playback, a show not started yet counts down and then
// plays, an ended show says so, an unknown ticket is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket, revokeTicket,
  waitInPage, waitForState, waitForPlayback, statusText,
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

test('revoking the ticket stops playback with the revoked message', async () => {
  const show = await createShow(server);
  const ticket = await createTicket(server, show.id);
  const { context, page } = await openDevice(browser);
  try {
    await page.goto(ticket.watch_url);
    await waitForPlayback(page, 1);
    await revokeTicket(server, ticket.id);

    await waitForState(page, 'revoked', 6000);
    assert.match(await statusText(page), /revoked/i);
    const stopped = await page.evaluate(() => {
      const v = document.getElementById('player');
      return v.paused && !v.getAttribute('src');
    });
    assert.ok(stopped, 'playback stopped');

    // The same link opened afresh is refused with the same words.
    const other = await openDevice(browser);
    try {
      await other.page.goto(ticket.watch_url);
      await waitForState(other.page, 'revoked');
      assert.match(await statusText(other.page), /revoked/i);
    } finally {
      await other.context.close();
    }
  } finally {
    await context.close();
  }
});

test('a show not started yet counts down', async () => {
  const show = await createShow(server, { startsInMs: 3600_000, endsInMs: 7200_000 });
  const ticket = await createTicket(server, show.id);
  const { context, page } = await openDevice(browser);
  try {
    await page.goto(ticket.watch_url);
    await waitForState(page, 'not_started');
    assert.match(await statusText(page), /not started/i);
    const first = await page.locator('#countdown').innerText();
    assert.match(first, /^(59:\d\d|1:00:00|01:00:00)$/, `about an hour left: "${first}"`);
    await waitInPage(page, 'the countdown to tick', (before) =>
      document.getElementById('countdown').textContent !== before, first, 3000);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'not_started');
  } finally {
    await context.close();
  }
});

test('when the countdown reaches zero the page admits and plays', async () => {
  const show = await createShow(server, { startsInMs: 6000, endsInMs: 3600_000 });
  const ticket = await createTicket(server, show.id);
  const { context, page } = await openDevice(browser);
  try {
    await page.goto(ticket.watch_url);
    await waitForState(page, 'not_started');
    assert.match(await page.locator('#countdown').innerText(), /^00:0\d$/);
    await waitForPlayback(page, 1, 30000);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await context.close();
  }
});

test('an ended show says it has ended', async () => {
  const show = await createShow(server, { startsInMs: -7200_000, endsInMs: -3600_000 });
  const ticket = await createTicket(server, show.id);
  const { context, page } = await openDevice(browser);
  try {
    await page.goto(ticket.watch_url);
    await waitForState(page, 'ended');
    assert.match(await statusText(page), /this show has ended/i);
    assert.ok(await page.evaluate(() => document.getElementById('player').paused));
  } finally {
    await context.close();
  }
});

test('an unknown ticket is refused in plain words', async () => {
  const { context, page } = await openDevice(browser);
  try {
    await page.goto(`${server.base}/watch/not-a-real-ticket-token-0000000000`);
    await waitForState(page, 'refused');
    assert.match(await statusText(page), /not valid/i);
  } finally {
    await context.close();
  }
});
