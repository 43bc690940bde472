// The admin console's main flows in a real browser against the real binary: log in (choosing a new
// password, as the bootstrap admin must), create a show with the form, see a viewer on the dashboard
// (which refreshes by itself) and on the sessions page, revoke that viewer's ticket from the console and
// watch the player stop with the revoked message, and disable a CDN from the console.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openDevice, createTicket, api, waitForPlayback, waitForState, statusText,
} from './support.mjs';
import { loginConsole } from './console-support.mjs';

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

const local = (ms) => new Date(ms).toISOString().slice(0, 16); // datetime-local, read as UTC by the form

test('console: log in, create a show, watch a viewer appear, revoke their ticket, disable a CDN', async () => {
  const admin = await openDevice(browser);
  const viewer = await openDevice(browser);
  const { page } = admin;
  try {
    // Without a session every console page sends you to the login page.
    await page.goto(server.base + '/admin/shows');
    assert.equal(new URL(page.url()).pathname, '/admin/login');
    await loginConsole(page, server);
    assert.match(await page.locator('.who').innerText(), /admin/);

    // Create a show with the form.
    const id = `console-${Date.now().toString(36)}`;
    await page.goto(server.base + '/admin/shows/new');
    await page.fill('input[name=id]', id);
    await page.fill('input[name=title]', 'Console test show');
    await page.selectOption('select[name=kind]', 'vod');
    await page.fill('input[name=stream_path]', 'demo');
    await page.fill('input[name=starts_at]', local(Date.now() - 3600_000));
    await page.fill('input[name=ends_at]', local(Date.now() + 3 * 3600_000));
    await page.fill('input[name=heartbeat_interval_s]', '2');
    await page.fill('input[name=lease_ttl_s]', '6');
    await page.fill('input[name=grant_ttl_s]', '60');
    await page.click('#save-show');
    await page.waitForURL(new RegExp(`/admin/shows/${id}\\?saved=1$`));
    const stored = await api(server, 'GET', `/api/v1/shows/${id}`, server.admin_key);
    assert.equal(stored.status, 200);
    assert.equal(stored.body.title, 'Console test show');
    assert.equal(stored.body.heartbeat_interval_s, 2);
    assert.equal(stored.body.published, true);

    // The dashboard is open before the viewer starts; it shows them when it refreshes by itself.
    await page.goto(server.base + '/admin');
    const cell = page.locator(`#viewers-per-show tr[data-show="${id}"] .viewers`);
    assert.equal((await cell.innerText()).trim(), '0');
    const ticket = await createTicket(server, id);
    await viewer.page.goto(ticket.watch_url);
    await waitForPlayback(viewer.page, 1);
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.textContent.trim() === '1',
      `#viewers-per-show tr[data-show="${id}"] .viewers`,
      { timeout: 15000 },
    );

    // The sessions page lists the viewer under the show, with its ticket.
    await page.goto(server.base + `/admin/sessions?show=${id}`);
    const row = page.locator(`section[data-show="${id}"] tr[data-session]`);
    assert.equal(await row.count(), 1);
    assert.match(await row.innerText(), new RegExp(ticket.id));

    // Revoke the ticket from the console: find it, open it, revoke (the confirmation is accepted).
    await page.goto(server.base + '/admin/tickets');
    await page.fill('input[name=q]', ticket.id);
    await page.click('form.search button[type=submit]');
    await page.waitForURL(new RegExp(`/admin/tickets/${ticket.id}$`));
    await page.click('#revoke');
    await page.waitForFunction(() => document.getElementById('ticket-status')?.textContent === 'revoked');
    await waitForState(viewer.page, 'revoked', 8000);
    assert.match(await statusText(viewer.page), /revoked/i);

    // The audit log names who did it.
    await page.goto(server.base + `/admin/audit?target=${ticket.id}`);
    assert.match(await page.locator('#audit').innerText(), /ticket\.revoke/);

    // Add a CDN with the form, then disable it from the pool page.
    await page.goto(server.base + '/admin/cdns/new');
    await page.fill('input[name=id]', 'edge-b');
    await page.fill('input[name=name]', 'Edge B');
    await page.fill('input[name=base_url]', 'https://edge-b.example.net');
    await page.selectOption('select[name=scheme]', 'nginx');
    await page.fill('textarea[name=secret]', 'edge-b-secret-value');
    await page.click('#cdn-form button[type=submit]');
    await page.waitForURL(/\/admin\/cdns\/edge-b\?saved=1$/);
    let cdn = await api(server, 'GET', '/api/v1/cdns/edge-b', server.admin_key);
    assert.equal(cdn.body.enabled, true);
    assert.equal(cdn.body.key_set, true);
    assert.ok(!(await page.content()).includes('edge-b-secret-value'), 'the secret is write-only');

    await page.goto(server.base + '/admin/cdns');
    await page.click('tr[data-cdn="edge-b"] button.toggle');
    await page.waitForFunction(() => document.querySelector('tr[data-cdn="edge-b"] .state')?.textContent.includes('disabled'));
    cdn = await api(server, 'GET', '/api/v1/cdns/edge-b', server.admin_key);
    assert.equal(cdn.body.enabled, false);

    // Logging out ends the session: the console asks to log in again.
    await page.click('.who button[type=submit]');
    await page.waitForURL(/\/admin\/login$/);
    await page.goto(server.base + '/admin');
    assert.equal(new URL(page.url()).pathname, '/admin/login');
  } finally {
    await admin.context.close();
    await viewer.context.close();
  }
});
