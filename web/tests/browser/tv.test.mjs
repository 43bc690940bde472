// TV sign-in codes (issue 20, RFC 8628): the TV's page shows a code and a QR code; a phone holding the
// ticket opens the QR code's link and approves; the TV then plays under that ticket as one of its devices
// (with one device and newest_wins, it takes the phone's seat). A reused or mistyped code is refused on
// the phone. The TV polls at the server's interval (5 s), so each sign-in takes a few seconds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket,
  waitForState, waitForPlayback, waitInPage, statusText,
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

async function tvCode(tv) {
  await tv.page.goto(`${server.base}/tv`);
  await waitInPage(tv.page, 'a code on the TV', () => document.body.dataset.state === 'waiting');
  const code = (await tv.page.locator('#user-code').innerText()).trim();
  assert.match(code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.ok(await tv.page.locator('#qr').isVisible(), 'the QR code is shown');
  return code;
}

async function approveOnPhone(phone, code) {
  await phone.page.goto(`${server.base}/activate?code=${code}`);
  assert.equal(await phone.page.locator('#user-code').inputValue(), code, 'the QR link fills the code in');
  await phone.page.locator('#approve button').click();
}

test('a phone holding the ticket signs the TV in; the TV plays and takes the seat', async () => {
  const show = await createShow(server, { policy: 'newest_wins' });
  const ticket = await createTicket(server, show.id);
  const phone = await openDevice(browser);
  const tv = await openDevice(browser);
  try {
    await phone.page.goto(ticket.watch_url);
    await waitForPlayback(phone.page, 1);

    const code = await tvCode(tv);
    const second = await openDevice(browser);
    try {
      await second.page.goto(`${server.base}/activate?code=${code}`);
      assert.match(await statusText(second.page), /open the watch link/i, 'a phone without the ticket is told what to do');
    } finally {
      await second.context.close();
    }

    const phonePage = await phone.context.newPage();
    phonePage.pageErrors = [];
    phonePage.on('pageerror', (err) => phonePage.pageErrors.push(String(err)));
    await approveOnPhone({ page: phonePage }, code);
    await waitInPage(phonePage, 'the approval', () => document.body.dataset.state === 'approved');
    assert.match(await statusText(phonePage), new RegExp(show.title));

    // the TV's next poll takes the ticket and opens the watch page
    await tv.page.waitForURL(/\/watch$/, { timeout: 20000 });
    await waitForPlayback(tv.page, 1);
    await waitForState(phone.page, 'superseded', 8000);

    // the code worked once: approving it again is refused, and so is a mistyped one
    await approveOnPhone({ page: phonePage }, code);
    await waitInPage(phonePage, 'a refusal', () => document.body.dataset.state === 'refused');
    assert.match(await statusText(phonePage), /no tv is waiting with this code/i);
    await phonePage.locator('#user-code').fill('BCDF-GHJK');
    await phonePage.keyboard.press('Enter');
    await waitInPage(phonePage, 'a refusal', () => /no tv is waiting/i.test(document.getElementById('status').textContent));
    assert.deepEqual([...tv.page.pageErrors, ...phonePage.pageErrors], []);
  } finally {
    await phone.context.close();
    await tv.context.close();
  }
});
