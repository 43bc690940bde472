// Video upload from the console (the show page's form: tus-js-client over /api/v1/uploads with the
// session's CSRF token): a generated MP4 goes up with a progress bar, the job list on the page follows
// the packaging to `done`, the show now streams from the new ladder, and a ticket's watch page plays it
// in Chromium. Needs ffmpeg (the demo takes uploads only with it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket, api, waitForPlayback, describe,
} from './support.mjs';
import { loginConsole } from './console-support.mjs';

let server;
let browser;
let dir;

before(async () => {
  server = await startServer({ deadlineMs: 60000 });
  browser = await launchBrowser();
  dir = await mkdtemp(join(tmpdir(), 'usher-upload-'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a video uploaded on the show page is packaged and plays', async () => {
  const file = join(dir, 'clip.mp4');
  const made = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=854x480:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '8', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', file]);
  assert.equal(made.status, 0, `ffmpeg must be installed: ${made.stderr}`);
  const size = (await stat(file)).size;
  const show = await createShow(server, { title: 'Uploaded clip' });

  const { page } = await openDevice(browser);
  await page.goto(server.base + `/admin/shows/${show.id}`);
  await loginConsole(page, server);
  await page.goto(server.base + `/admin/shows/${show.id}`);
  const form = page.locator('form[data-tus]');
  await form.locator('input[type=file]').setInputFiles(file);
  const progress = [];
  await page.exposeFunction('noteProgress', (v) => progress.push(v));
  await page.evaluate(() => {
    const bar = document.querySelector('form[data-tus] progress');
    new MutationObserver(() => window.noteProgress(Number(bar.value))).observe(bar, { attributes: true });
  });
  await form.locator('button[type=submit]').click();
  await page.waitForFunction(() => /uploaded: packaging is queued/.test(document.querySelector('form[data-tus] [data-upload-status]').textContent),
    undefined, { timeout: 60000 }).catch(async (e) => {
    const status = await page.locator('form[data-tus] [data-upload-status]').innerText();
    throw new Error(`${e.message}: the form says "${status}"; errors ${page.pageErrors}; console ${page.consoleLog.join(' | ')}`);
  });
  const bar = await form.locator('progress').evaluate((b) => ({ value: b.value, max: b.max, hidden: b.hidden }));
  assert.equal(bar.hidden, false, 'the progress bar shows');
  assert.equal(bar.max, size);
  assert.equal(bar.value, size, 'the bar is full');
  assert.ok(progress.length >= 1, 'the bar moved');

  // the job list refreshes by itself until the job is done
  const row = page.locator('#uploads tr[data-upload-id]');
  await page.waitForFunction(() => document.querySelector('#uploads tr[data-upload-id]')?.dataset.state === 'done',
    undefined, { timeout: 120000 });
  assert.match(await row.innerText(), /480p, 360p/);
  const after = await api(server, 'GET', `/api/v1/shows/${show.id}`, server.admin_key);
  assert.match(after.body.stream_path, new RegExp(`^${show.id}-[0-9a-f]{8}$`));

  // a viewer plays the uploaded video
  const ticket = await createTicket(server, show.id);
  const viewer = await openDevice(browser);
  await viewer.page.goto(ticket.watch_url);
  await waitForPlayback(viewer.page, 3).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await describe(viewer.page))}`);
  });
  assert.deepEqual(page.pageErrors, []);
  assert.deepEqual(viewer.page.pageErrors, []);
});
