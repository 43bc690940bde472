// Live ingest in the browser: `usher serve` with RTMP and SRT ingest on, ffmpeg publishing a generated
// test pattern and tone with the show's stream key, and headless Chromium on a ticket's watch link playing
// it live within 15 s of the publish, its live edge at most ~3 segment durations behind; the encoder
// dropping out for 5 s and coming back keeps the same page playing. The same over SRT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  USHER_BIN, launchBrowser, openDevice, waitForPlayback, waitInPage, frameStats, describe,
} from './support.mjs';

const SEGMENT_S = 2;

let server;
let browser;

/** `usher serve` with ingest on free ports; its JSON log read for the bound addresses. */
async function startLiveServer() {
  const dir = await mkdtemp(join(tmpdir(), 'usher-live-'));
  await mkdir(join(dir, 'media'));
  const config = join(dir, 'usher.toml');
  await writeFile(config, `listen = "127.0.0.1:0"
data_dir = "${join(dir, 'data')}"
media_dir = "${join(dir, 'media')}"
[secrets]
token_key = "browser-live-token-key-0123456789abcdef01"
grant_key = "browser-live-grant-key-0123456789abcdef01"
[log]
format = "json"
level = "warn,usher=info"
[ingest]
rtmp_listen = "127.0.0.1:0"
srt_listen = "127.0.0.1:0"
reconnect_window_s = 20
segment_s = ${SEGMENT_S}
dvr_s = 60
preset = "ultrafast"
ladder = [{height = 360, video_kbps = 500, audio_kbps = 64}, {height = 180, video_kbps = 200, audio_kbps = 48}]
`);
  // the test runner's USHER_* variables (USHER_MEDIA_DIR, USHER_BIN) would be read as configuration
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('USHER_')));
  const key = (scope) => execFileSync(USHER_BIN, ['api-key', 'create', '--name', scope, '--scope', scope, '--config', config], { env }).toString().trim();
  const admin = key('admin');
  const child = spawn(USHER_BIN, ['serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  child.stderr.on('data', (chunk) => {
    log = (log + chunk).slice(-200000);
    if (process.env.USHER_TEST_LOG) process.stderr.write(chunk);
  });
  const exited = new Promise((done) => child.once('exit', done));
  const field = (message, name) => {
    for (const line of log.split('\n')) {
      try {
        const v = JSON.parse(line);
        if (v.message === message) return v[name];
      } catch { /* a partial line */ }
    }
    return undefined;
  };
  const deadline = Date.now() + 30000;
  while (!field('ingest listening', 'rtmp')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`usher serve did not start with ingest:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base: `http://${field('usher serving', 'listen')}`,
    rtmp: field('ingest listening', 'rtmp'),
    srt: field('ingest listening', 'srt'),
    admin,
    dir,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(killer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function call(method, path, body) {
  const res = await fetch(server.base + path, {
    method,
    headers: { authorization: `Bearer ${server.admin}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A live show open now with its stream key, and a ticket's watch link. */
async function liveShow(id) {
  const now = Date.now();
  await call('PUT', `/api/v1/shows/${id}`, {
    title: `Live ${id}`, kind: 'live', stream_path: `live/${id}`,
    starts_at: new Date(now - 60_000).toISOString(), ends_at: new Date(now + 3600_000).toISOString(),
  });
  const { stream_key: key } = await call('POST', `/api/v1/shows/${id}/stream-key`);
  const ticket = await call('POST', '/api/v1/tickets', { show_id: id });
  return { key, watchUrl: ticket.watch_url };
}

function encoder(url) {
  const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '50', '-c:a', 'aac',
    '-f', url.startsWith('srt://') ? 'mpegts' : 'flv', url], { stdio: 'ignore' });
  return child;
}

/** How far the page plays behind the live playlist's end, in seconds. */
function behindLiveEdge(page) {
  return page.evaluate(() => {
    const v = document.getElementById('player');
    return v.seekable.length ? v.seekable.end(v.seekable.length - 1) - v.currentTime : Infinity;
  });
}

before(async () => {
  server = await startLiveServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

for (const protocol of ['rtmp', 'srt']) {
  test(`a live show published over ${protocol.toUpperCase()} plays in the browser near the live edge and survives a drop-out`, async () => {
    const id = `${protocol}-live`;
    const { key, watchUrl } = await liveShow(id);
    const url = protocol === 'rtmp' ? `rtmp://${server.rtmp}/live/${key}` : `srt://${server.srt}?streamid=${key}`;
    const t0 = Date.now();
    let publisher = encoder(url);
    const device = await openDevice(browser);
    try {
      // the viewer opens the watch link once the stream is there (the master playlist is written with the
      // first segments)
      const deadline = t0 + 15000;
      for (;;) {
        const i = await call('GET', `/api/v1/shows/${id}/ingest`);
        try {
          await readFile(join(server.dir, 'media', 'live', id, 'master.m3u8'));
          if (i.state === 'live') break;
        } catch { /* not yet */ }
        if (Date.now() > deadline) {
          const files = await readdir(join(server.dir, 'media'), { recursive: true }).catch((e) => String(e));
          assert.fail(`no live stream 15 s after the publish: ${JSON.stringify(i)}; media: ${JSON.stringify(files)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      await device.page.goto(watchUrl);
      await waitForPlayback(device.page, 1, Math.max(1000, t0 + 15000 - Date.now()));
      const toPlaying = (Date.now() - t0) / 1000;
      console.log(`${protocol}: publish → playing in the browser: ${toPlaying.toFixed(1)} s`);
      assert.ok(toPlaying <= 15, `playing ${toPlaying} s after the publish`);
      await waitForPlayback(device.page, 3);
      const behind = await behindLiveEdge(device.page);
      console.log(`${protocol}: behind the live edge: ${behind.toFixed(2)} s`);
      assert.ok(behind <= 3 * SEGMENT_S + 1, `the live edge is ${behind} s ahead (at most ~3 segments)`);
      const frame = await frameStats(device.page);
      assert.ok(frame.max - frame.min > 8 && frame.width === 640, `real pictures: ${JSON.stringify(frame)}`);

      // the encoder drops out for 5 s and comes back: the same page keeps playing
      publisher.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 5000));
      publisher = encoder(url);
      const before = await device.page.evaluate(() => document.getElementById('player').currentTime);
      await waitInPage(device.page, 'playback past the drop-out', (t) => {
        const v = document.getElementById('player');
        return document.body.dataset.state === 'playing' && !v.paused && v.currentTime > t + 2 * 2 + 4;
      }, before, 30000);
      const ingest = await call('GET', `/api/v1/shows/${id}/ingest`);
      assert.equal(ingest.state, 'live');
      assert.equal(ingest.publishes, 2);
      const behindAfter = await behindLiveEdge(device.page);
      console.log(`${protocol}: behind the live edge after the drop-out: ${behindAfter.toFixed(2)} s`);
      assert.deepEqual(device.page.pageErrors, [], await describe(device.page));
    } finally {
      publisher.kill('SIGKILL');
      await device.context.close();
    }
  });
}
