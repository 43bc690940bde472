// Screenshots of every console page, for looking at them (not a test): node web/tests/browser/console-screens.mjs [dir]
// Starts the real binary in demo mode, logs in as the bootstrap admin, makes a little data, and saves PNGs.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, launchBrowser, openDevice, createTicket, api } from './support.mjs';
import { loginConsole } from './console-support.mjs';

const dir = process.argv[2] || '/tmp/usher-screens';
await mkdir(dir, { recursive: true });
const server = await startServer();
const browser = await launchBrowser();
try {
  const viewer = await openDevice(browser);
  const ticket = await createTicket(server, 'demo');
  await viewer.page.goto(ticket.watch_url);
  await viewer.page.waitForFunction(() => document.body.dataset.state === 'playing', null, { timeout: 20000 });
  await api(server, 'PUT', '/api/v1/cdns/edge-a', server.admin_key, {
    name: 'Edge A (nginx)', base_url: 'https://edge-a.example.net', signing: { scheme: 'nginx', secret: 'edge-secret', expression: '$secure_link_expires$uri $secret' },
  });
  const { page } = await openDevice(browser);
  page.setViewportSize({ width: 1400, height: 900 });
  const shot = async (name, path) => {
    if (path) await page.goto(server.base + path);
    await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
  };
  await page.goto(server.base + '/admin');
  await shot('01-login');
  await loginConsole(page, server, { screenshot: (n) => shot(n) });
  await shot('03-dashboard', '/admin');
  await shot('04-shows', '/admin/shows');
  await shot('05-show-new', '/admin/shows/new');
  await shot('06-show-edit', '/admin/shows/demo');
  await shot('07-tickets-search', `/admin/tickets?q=demo`);
  await shot('08-ticket', `/admin/tickets/${ticket.id}`);
  await shot('09-sessions', '/admin/sessions');
  await shot('10-cdns', '/admin/cdns');
  await page.goto(server.base + '/admin/cdns/edge-a');
  await page.click('form[action$="/test"] button[type=submit]');
  await page.waitForSelector('#test-result');
  await shot('11-cdn-edit-test');
  await shot('12-geoip', '/admin/geoip');
  await shot('13-api-keys', '/admin/api-keys');
  await shot('14-users', '/admin/users');
  await shot('15-audit', '/admin/audit');
  console.log(`screenshots in ${dir}`);
} finally {
  await browser.close();
  await server.stop();
}
