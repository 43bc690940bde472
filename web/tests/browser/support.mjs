// Helpers for the browser tests: start the real `usher` binary (demo mode, fresh data dir, port 0), call
// its admin and ticket APIs, launch headless Chromium, and wait on the watch page's state with deadlines.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const repoRoot = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../..');
const targetDir = resolve(repoRoot, process.env.CARGO_TARGET_DIR || 'target');
export const USHER_BIN = resolve(process.env.USHER_BIN || join(targetDir, 'debug', 'usher'));
export const USHER_MEDIA_DIR = resolve(repoRoot, process.env.USHER_MEDIA_DIR || 'media');
export const CHROMIUM = process.env.USHER_CHROMIUM || '/usr/bin/chromium';
// Front-end work without rebuilding usher (which embeds web/dist when compiled): serve /assets/* to the
// browser from web/dist instead of from the binary.
export const LOCAL_ASSETS = process.env.USHER_TEST_LOCAL_ASSETS === '1';
const distDir = resolve(repoRoot, 'web', 'dist');

/** Starts `usher demo --json` and resolves once it printed its JSON line: {base_url, admin_key, ...}. */
export async function startServer({ deadlineMs = 30000 } = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'usher-browser-'));
  const child = spawn(USHER_BIN, ['demo', '--json', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--media-dir', USHER_MEDIA_DIR], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-20000);
    if (process.env.USHER_TEST_LOG) process.stderr.write(chunk);
  });
  const exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const spawnError = new Promise((_, fail) => child.once('error', (err) => fail(new Error(`cannot start ${USHER_BIN}: ${err.message}`))));

  const firstLine = new Promise((done, fail) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => done(line));
    lines.once('close', () => fail(new Error('usher closed stdout before printing its JSON line')));
  });
  let timer;
  const deadline = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`usher printed no JSON line within ${deadlineMs} ms`)), deadlineMs);
  });
  let info;
  try {
    const line = await Promise.race([firstLine, spawnError, deadline,
      exited.then(({ code, signal }) => { throw new Error(`usher exited early (code ${code}, signal ${signal})`); })]);
    info = JSON.parse(line);
    for (const key of ['base_url', 'admin_key', 'tickets_key']) {
      if (!info[key]) throw new Error(`usher's JSON line lacks "${key}": ${line}`);
    }
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    err.message += `\n--- usher stderr ---\n${stderr}`;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  child.stdout.resume(); // keep draining stdout so the server never blocks on a full pipe

  return {
    ...info,
    base: info.base_url.replace(/\/$/, ''),
    // the folder the demo serves streams from (a copy of media/demo is put there at start)
    mediaDir: join(dataDir, 'media'),
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Calls the server's JSON API; returns {status, headers, body}. */
export async function api(server, method, path, key, body) {
  const res = await fetch(server.base + path, {
    method,
    headers: {
      Accept: 'application/json',
      ...(key ? { Authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

function expectStatus(res, allowed, what) {
  if (!allowed.includes(res.status)) {
    throw new Error(`${what}: expected HTTP ${allowed.join('/')} but got ${res.status}: ${res.text}`);
  }
  return res.body;
}

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Creates a VOD show on the demo stream (or `streamPath`: the demo's encrypted copy is `demo-aes`, with
 * `encryption: 'aes-128'`) with a short heartbeat so the tests run fast.
 * `startsInMs`/`endsInMs` place the watch window relative to now.
 */
export async function createShow(server, { policy = 'newest_wins', startsInMs = -3600_000, endsInMs = 3 * 3600_000, title, streamPath = 'demo', encryption = 'none', capacity } = {}) {
  const id = `browser-${randomBytes(5).toString('hex')}`;
  const now = Date.now();
  const show = {
    title: title || `Browser test ${id}`,
    description: 'A show made by the browser tests.',
    kind: 'vod',
    starts_at: iso(now + startsInMs),
    ends_at: iso(now + endsInMs),
    stream_path: streamPath,
    encryption,
    max_devices: 1,
    policy,
    heartbeat_interval_s: 2,
    lease_ttl_s: 6,
    grant_ttl_s: 60,
    ...(capacity ? { capacity } : {}),
  };
  expectStatus(await api(server, 'PUT', `/api/v1/shows/${id}`, server.admin_key, show), [200, 201], `PUT show ${id}`);
  return { id, ...show };
}

/** Registers a ticket for the show; returns {id, token, watch_url, ...}. */
export async function createTicket(server, showId) {
  const ticket = expectStatus(await api(server, 'POST', '/api/v1/tickets', server.tickets_key, { show_id: showId }), [201], 'POST ticket');
  if (!ticket || !ticket.id || !ticket.watch_url) throw new Error(`ticket answer lacks id/watch_url: ${JSON.stringify(ticket)}`);
  return ticket;
}

export async function revokeTicket(server, ticketId) {
  return expectStatus(await api(server, 'POST', `/api/v1/tickets/${ticketId}/revoke`, server.tickets_key), [200], 'revoke ticket');
}

export async function ticketUsage(server, ticketId) {
  return expectStatus(await api(server, 'GET', `/api/v1/tickets/${ticketId}`, server.tickets_key), [200], 'GET ticket');
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
}

/**
 * A fresh browser context (= a new device, its own cookies) with one page; page errors are collected.
 * `options` go to Playwright's newContext (e.g. `locale: 'de-DE'`, which sets `Accept-Language`), but
 * `initScript`, a function run in every document before the page's own scripts.
 */
export async function openDevice(browser, { initScript, ...options } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, ...options });
  if (initScript) await context.addInitScript(initScript);
  if (LOCAL_ASSETS) {
    await context.route(/\/assets\/[\w.-]+$/, (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop();
      const type = name.endsWith('.css') ? 'text/css' : name.endsWith('.ftl') ? 'text/plain' : 'text/javascript';
      return route.fulfill({ path: join(distDir, name), contentType: type });
    });
  }
  const page = await context.newPage();
  page.pageErrors = [];
  page.consoleLog = [];
  page.on('pageerror', (err) => page.pageErrors.push(String(err)));
  page.on('console', (msg) => page.consoleLog.push(`${msg.type()}: ${msg.text()}`));
  return { context, page };
}

/** What the page shows now, for failure messages. */
export async function describe(page) {
  try {
    return await page.evaluate(() => {
      const v = document.getElementById('player');
      return JSON.stringify({
        url: location.href,
        state: document.body && document.body.dataset.state,
        status: document.getElementById('status')?.textContent,
        hint: document.getElementById('hint')?.textContent,
        currentTime: v && v.currentTime,
        paused: v && v.paused,
        readyState: v && v.readyState,
        src: v && v.getAttribute('src'),
      });
    });
  } catch (err) {
    return `(page not readable: ${err.message})`;
  }
}

/** Waits for `predicate(arg)` in the page; on timeout the error says what the page showed. */
export async function waitInPage(page, what, predicate, arg, timeout = 15000) {
  try {
    await page.waitForFunction(predicate, arg, { timeout, polling: 100 });
  } catch (err) {
    const errors = page.pageErrors && page.pageErrors.length ? ` page errors: ${page.pageErrors.join(' | ')}` : '';
    const log = page.consoleLog && page.consoleLog.length ? `\nconsole (last 20):\n  ${page.consoleLog.slice(-20).join('\n  ')}` : '';
    throw new Error(`timed out after ${timeout} ms waiting for ${what}; page: ${await describe(page)}${errors}${log}`);
  }
}

export function waitForState(page, state, timeout = 15000) {
  return waitInPage(page, `data-state=${state}`, (s) => document.body.dataset.state === s, state, timeout);
}

/** Waits until the page is in state "playing" and its video has advanced `seconds` of real playback. */
export function waitForPlayback(page, seconds, timeout = 30000) {
  const key = `__usherT0_${Math.random().toString(36).slice(2)}`;
  return waitInPage(page, `${seconds}s of playback`, ([k, secs]) => {
    const v = document.getElementById('player');
    if (!v || document.body.dataset.state !== 'playing' || v.paused || v.readyState < 2) return false;
    if (window[k] === undefined) window[k] = v.currentTime;
    return v.currentTime - window[k] >= secs;
  }, [key, seconds], timeout);
}

/** Average brightness (0-255) and spread of the current video frame, drawn to a small canvas. */
export async function frameStats(page) {
  return page.evaluate(() => {
    const v = document.getElementById('player');
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 36;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, canvas.width, canvas.height);
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let sum = 0;
    let min = 255;
    let max = 0;
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2];
      sum += y;
      min = Math.min(min, y);
      max = Math.max(max, y);
    }
    return { mean: sum / (data.length / 4), min, max, width: v.videoWidth, height: v.videoHeight };
  });
}

export const statusText = (page) => page.locator('#status').innerText();

/**
 * The viewer pages' messages (web/locales/<lang>.ftl, English under it as the pages have it): `text(id,
 * args)` formats one as the page must show it; `pattern(id)` is a RegExp of it with every variable as
 * `.+` (for messages holding a device name or a time).
 */
export async function messages(lang) {
  const { FluentBundle, FluentResource } = await import('@fluent/bundle');
  const { readFile } = await import('node:fs/promises');
  const read = (code) => readFile(join(repoRoot, 'web', 'locales', `${code}.ftl`), 'utf8');
  const bundle = new FluentBundle(lang, { useIsolating: false });
  bundle.addResource(new FluentResource(await read('en')));
  if (lang !== 'en') bundle.addResource(new FluentResource(await read(lang)), { allowOverrides: true });
  const text = (id, args) => {
    const [name, attribute] = id.split('.');
    const message = bundle.getMessage(name);
    if (!message) throw new Error(`no message ${id} in ${lang}`);
    const errors = [];
    const out = bundle.formatPattern(attribute ? message.attributes[attribute] : message.value, args, errors);
    if (errors.length) throw new Error(`formatting ${id} in ${lang}: ${errors.join('; ')}`);
    return out;
  };
  const pattern = (id, names) => {
    const marks = Object.fromEntries(names.map((n, i) => [n, `\u0001${i}\u0002`]));
    const escaped = text(id, marks).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return new RegExp(`^${escaped.replace(/\u0001\d+\u0002/g, '.+')}$`);
  };
  return { text, pattern };
}
