// Multi-CDN fail-over in a real browser: Debian's nginx on loopback is CDN "a" (secure_link checks the
// viewer's signed URL, then it pulls from Usher's /pull/ with its own origin secret); Usher's origin is
// the second pathway. Playback starts on A; A is disabled through the API (first run) or its nginx is
// killed (second run); playback goes on from the origin without a stall longer than 2 s, and the
// steering manifest no longer lists A.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket, api, waitForPlayback,
} from './support.mjs';

const NGINX = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
const EDGE_SECRET = `edge-${randomBytes(12).toString('hex')}`;
const PULL_SECRET = `pull-${randomBytes(16).toString('hex')}`;

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

function freePort() {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

/** Starts nginx as an edge that checks secure_link and pulls from Usher; resolves once it listens. */
async function startEdge(usherPort) {
  const dir = await mkdtemp(join(tmpdir(), 'usher-edge-'));
  const port = await freePort();
  const root = process.getuid && process.getuid() === 0;
  const conf = `${root ? 'user root;' : ''}
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    add_header Access-Control-Allow-Origin * always;
    location ~ ^/(?<secure>[\\w-]+,\\d+)(?<prefix>/[^/]+/)(?<file>.*)$ {
      secure_link $secure;
      secure_link_md5 "$secure_link_expires$prefix ${EDGE_SECRET}";
      if ($secure_link = "") { return 403; }
      if ($secure_link = "0") { return 410; }
      proxy_pass http://127.0.0.1:${usherPort}/pull$prefix$file;
      proxy_set_header X-Usher-Origin-Secret "${PULL_SECRET}";
    }
    location / { return 403; }
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  // its own process group, so the second run can kill master and worker at once
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
    stdio: 'ignore', detached: true,
  });
  child.unref();
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      if (res.status === 403) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    kill() {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
    async stop() {
      this.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function putEdge(edge, extra = {}) {
  const res = await api(server, 'PUT', '/api/v1/cdns/a', server.admin_key, {
    name: 'CDN A (nginx edge)',
    base_url: edge.base,
    priority: 10,
    canary: 'demo/master.m3u8',
    origin_secret: PULL_SECRET,
    signing: {
      scheme: 'nginx', secret: EDGE_SECRET, delivery: 'path', prefix_variable: 'prefix',
      expression: '$secure_link_expires$prefix $secret',
    },
    ...extra,
  });
  assert.ok([200, 201].includes(res.status), `PUT cdn a: ${res.status} ${res.text}`);
}

async function waitHealth(state, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api(server, 'GET', '/api/v1/cdns/a', server.admin_key);
    if (res.body && res.body.health && res.body.health.state === state) return res.body.health;
    if (Date.now() > deadline) throw new Error(`CDN a not ${state}: ${res.text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Watches `page`'s media requests: which host each fragment came from and when. */
function recordFragments(page, edge) {
  const fragments = [];
  page.responses = [];
  page.on('response', (res) => page.responses.push(`${res.status()} ${res.url().slice(0, 150)}`));
  page.on('requestfailed', (req) => page.responses.push(`FAILED ${req.failure()?.errorText} ${req.url().slice(0, 150)}`));
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (!url.pathname.endsWith('.ts')) return;
    const via = url.port === String(edge.port) ? 'a' : url.pathname.startsWith('/o/') ? 'origin' : url.host;
    fragments.push({ via, at: Date.now() });
  });
  return fragments;
}

/** Starts a stall meter in the page: the longest time currentTime stood still while meant to play. */
async function startStallMeter(page) {
  await page.evaluate(() => {
    const v = document.getElementById('player');
    const m = { longestMs: 0, since: performance.now(), lastTime: v.currentTime };
    window.__usherStall = m;
    setInterval(() => {
      const now = performance.now();
      if (v.currentTime !== m.lastTime || v.paused || v.ended) {
        m.lastTime = v.currentTime;
        m.since = now;
      } else {
        m.longestMs = Math.max(m.longestMs, now - m.since);
      }
    }, 50);
  });
}

const longestStall = (page) => page.evaluate(() => window.__usherStall.longestMs);

async function steeringOf(page) {
  const session = await page.evaluate(() => performance.getEntriesByType('resource')
    .map((e) => e.name).find((n) => n.includes('/steering.json') || n.includes('/master.m3u8')));
  const id = new URL(session).pathname.split('/')[2];
  // as the page's player asks: the session's secret rides in the page's HttpOnly cookie
  const res = await page.evaluate(async (sid) => {
    const r = await fetch(`/hls/${sid}/steering.json?usher_player=web`);
    return { status: r.status, text: await r.text() };
  }, id);
  assert.equal(res.status, 200, res.text);
  return JSON.parse(res.text);
}

async function failOver(breakEdge, what) {
  const usherPort = new URL(server.base).port;
  const edge = await startEdge(usherPort);
  let context;
  try {
    await putEdge(edge);
    await waitHealth('healthy');
    const show = await createShow(server, { title: `Fail-over (${what})` });
    const ticket = await createTicket(server, show.id);
    const device = await openDevice(browser);
    context = device.context;
    const { page } = device;
    const fragments = recordFragments(page, edge);
    await page.goto(ticket.watch_url);
    await waitForPlayback(page, 2, 30000);
    assert.ok(fragments.length > 0 && fragments.every((f) => f.via === 'a'),
      `playback starts on CDN a: ${JSON.stringify(fragments.slice(0, 5))}\nconsole:\n${page.consoleLog.slice(-30).join('\n')}\nresponses:\n${page.responses.slice(0, 30).join('\n')}`);
    await startStallMeter(page);

    const brokeAt = Date.now();
    await breakEdge(edge);
    const deadline = Date.now() + 20000;
    while (!fragments.some((f) => f.via === 'origin' && f.at > brokeAt)) {
      if (Date.now() > deadline) throw new Error(`no fragment from the origin after ${what}: ${JSON.stringify(fragments)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const switchedAt = fragments.find((f) => f.via === 'origin' && f.at > brokeAt).at;
    // keep watching: 8 more seconds of playback, all of it from the origin
    await waitForPlayback(page, 8, 30000);
    const stall = await longestStall(page);
    assert.ok(stall < 2000, `longest stall ${Math.round(stall)} ms after ${what}`);
    const late = fragments.filter((f) => f.at > switchedAt + 1000 && f.via !== 'origin');
    assert.deepEqual(late, [], 'after the switch every fragment comes from the origin');
    const steering = await steeringOf(page);
    assert.ok(!steering['PATHWAY-PRIORITY'].includes('a'), `steering without a: ${JSON.stringify(steering)}`);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'playing');
    const reloads = page.responses.filter((r) => r.includes('/steering.json'));
    assert.ok(reloads.length > 0 && reloads.every((r) => r.startsWith('200 ') && r.includes('usher_player=web')),
      `hls.js reloads steering as the web player (no grant clones): ${reloads.join(' | ')}`);
    console.log(`${what}: switched to the origin ${switchedAt - brokeAt} ms after, longest stall ${Math.round(stall)} ms`);
  } finally {
    await context?.close();
    await edge.stop();
  }
}

test('disabling CDN a through the API moves playback to the origin without a stall', async () => {
  await failOver(async () => {
    const res = await api(server, 'PATCH', '/api/v1/cdns/a', server.admin_key, { enabled: false });
    assert.equal(res.status, 200, res.text);
  }, 'disabling a');
  const res = await api(server, 'PATCH', '/api/v1/cdns/a', server.admin_key, { enabled: true });
  assert.equal(res.status, 200, res.text);
});

test('killing CDN a\'s nginx mid-playback moves playback to the origin without a stall', async () => {
  await failOver(async (edge) => {
    edge.kill();
  }, 'killing nginx');
  const health = await waitHealth('unhealthy');
  assert.ok(health.last_error, JSON.stringify(health));
});

test('nginx pulls from the origin only with its secret', async () => {
  const usherPort = new URL(server.base).port;
  const edge = await startEdge(usherPort);
  try {
    await putEdge(edge);
    const signed = await api(server, 'POST', '/api/v1/cdns/a/sign', server.admin_key, { path: 'demo/master.m3u8' });
    assert.equal(signed.status, 200, signed.text);
    assert.equal((await fetch(signed.body.url)).status, 200, 'pulled through the edge');
    const cut = await api(server, 'PATCH', '/api/v1/cdns/a', server.admin_key, { origin_secret: null });
    assert.equal(cut.status, 200, cut.text);
    assert.equal((await fetch(signed.body.url)).status, 403, 'the origin refuses the edge once its secret is removed');
  } finally {
    await edge.stop();
  }
});
