// One ticket, two devices: newest_wins moves playback (and back with "Continue watching here"),
// oldest_wins refuses the second device.
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

// Heartbeats come every 2 s; "about one heartbeat" plus page and network slack.
const ONE_HEARTBEAT_MS = 6000;

async function assertStopped(page) {
  const stopped = await page.evaluate(() => {
    const v = document.getElementById('player');
    return v.paused && !v.getAttribute('src');
  });
  assert.ok(stopped, 'the superseded player is stopped');
}

test('newest_wins: a second device takes over, and "Continue watching here" takes it back', async () => {
  const show = await createShow(server, { policy: 'newest_wins' });
  const ticket = await createTicket(server, show.id);
  const first = await openDevice(browser);
  const second = await openDevice(browser);
  try {
    await first.page.goto(ticket.watch_url);
    await waitForPlayback(first.page, 1);

    await second.page.goto(ticket.watch_url);
    await waitForPlayback(second.page, 1);
    await waitForState(first.page, 'superseded', ONE_HEARTBEAT_MS);
    assert.match(await statusText(first.page), /moved to another device/i);
    await assertStopped(first.page);
    const button = first.page.locator('#continue-here');
    assert.ok(await button.isVisible(), '"Continue watching here" is offered');

    await button.click();
    await waitForPlayback(first.page, 1.5);
    await waitForState(second.page, 'superseded', ONE_HEARTBEAT_MS);
    assert.match(await statusText(second.page), /moved to another device/i);
    await assertStopped(second.page);
    assert.ok(await second.page.locator('#continue-here').isVisible());
    assert.deepEqual([...first.page.pageErrors, ...second.page.pageErrors], []);
  } finally {
    await first.context.close();
    await second.context.close();
  }
});

test('oldest_wins: the second device is told the ticket is in use', async () => {
  const show = await createShow(server, { policy: 'oldest_wins' });
  const ticket = await createTicket(server, show.id);
  const first = await openDevice(browser);
  const second = await openDevice(browser);
  try {
    await first.page.goto(ticket.watch_url);
    await waitForPlayback(first.page, 1);

    await second.page.goto(ticket.watch_url);
    await waitForState(second.page, 'in_use');
    assert.match(await statusText(second.page), /already playing on another device/i);
    assert.match(await second.page.locator('#hint').innerText(), /try(ing)? again/i);
    await assertStopped(second.page);

    // The first device is not disturbed: it keeps playing across more than one heartbeat.
    await waitForPlayback(first.page, 3);
    assert.equal(await second.page.evaluate(() => document.body.dataset.state), 'in_use');
  } finally {
    await first.context.close();
    await second.context.close();
  }
});
