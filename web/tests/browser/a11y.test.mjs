// Accessibility: axe-core (npm, run inside the page) finds no WCAG 2.2 AA violation on the watch page
// (playing, refused, counting down, taken over) nor on the console's main pages; and a keyboard alone
// starts playback and takes the seat back ("Continue watching here") with Tab and Enter; subtitles the
// stream carries can be picked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket, revokeTicket,
  waitInPage, waitForState, waitForPlayback,
} from './support.mjs';
import { loginConsole } from './console-support.mjs';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

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

// The pages' CSP allows only their own scripts; the checker comes in past it (bypassCSP).
const device = (o = {}) => openDevice(browser, { bypassCSP: true, ...o });

/** Runs axe on the page as it is now: each violation, its rule, and the elements (none: []). */
async function violations(page, what) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }),
    WCAG_AA,
  );
  // axe ran its checks (a page it could not read would pass by checking nothing)
  assert.ok(result.passes.length > 0, `${what}: axe passed no check at all`);
  return result.violations.map((v) =>
    `${what}: ${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\n/g, ' ')}`).join('\n    ')}`);
}

async function assertNoViolations(page, what) {
  assert.deepEqual(await violations(page, what), [], `${what}: axe found WCAG 2.2 AA violations`);
}

test('axe: the watch page playing, refused, counting down and taken over', async () => {
  const show = await createShow(server);
  const ticket = await createTicket(server, show.id);
  const first = await device();
  const second = await device();
  try {
    await first.page.goto(ticket.watch_url);
    await waitForPlayback(first.page, 0.5);
    await assertNoViolations(first.page, 'playing');

    await second.page.goto(ticket.watch_url);
    await waitForState(first.page, 'superseded', 8000);
    await assertNoViolations(first.page, 'taken over');
  } finally {
    await first.context.close();
    await second.context.close();
  }

  const revoked = await createTicket(server, show.id);
  await revokeTicket(server, revoked.id);
  const later = await createShow(server, { startsInMs: 3600_000, endsInMs: 7200_000 });
  const early = await createTicket(server, later.id);
  for (const [url, state] of [[revoked.watch_url, 'revoked'], [early.watch_url, 'not_started'], [`${server.base}/watch/no-such-ticket`, 'refused']]) {
    const { context, page } = await device();
    try {
      await page.goto(url);
      await waitForState(page, state);
      await assertNoViolations(page, state);
    } finally {
      await context.close();
    }
  }
});

test('axe: the console\'s main pages', async () => {
  const show = await createShow(server);
  const ticket = await createTicket(server, show.id);
  const { context, page } = await device();
  try {
    await page.goto(server.base + '/admin/login');
    const found = await violations(page, '/admin/login');
    await loginConsole(page, server);
    for (const path of ['/admin', '/admin/shows', '/admin/shows/new', `/admin/shows/${show.id}`,
      '/admin/tickets?q=demo', `/admin/tickets/${ticket.id}`, '/admin/sessions', '/admin/cdns',
      '/admin/cdns/new', '/admin/geoip', '/admin/api-keys', '/admin/webhooks', '/admin/users', '/admin/audit']) {
      const res = await page.goto(server.base + path);
      assert.equal(res.status(), 200, path);
      found.push(...await violations(page, path));
    }
    assert.deepEqual(found, [], 'axe found WCAG 2.2 AA violations on console pages');
  } finally {
    await context.close();
  }
});

/** Presses Tab until `id` has the focus (at most `limit` times); fails if it never does. */
async function tabTo(page, id, limit = 25) {
  for (let i = 0; i < limit; i += 1) {
    if (await page.evaluate((want) => document.activeElement && document.activeElement.id === want, id)) return;
    await page.keyboard.press('Tab');
  }
  const at = await page.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.tagName));
  assert.fail(`#${id} never got the focus with Tab (focus at ${at})`);
}

test('keyboard only: start playback, then take the seat back with "Continue watching here"', async () => {
  const show = await createShow(server);
  const ticket = await createTicket(server, show.id);
  // a browser that lets nothing play by itself, not even muted (Safari's "Never Auto-Play", Firefox's
  // "Block Audio and Video"): play() is refused without a user's gesture, so the viewer must start it
  const first = await openDevice(browser, {
    initScript: () => {
      // the viewer's own key presses and clicks in this document are the only gestures
      let gesture = 0;
      for (const type of ['keydown', 'pointerdown']) {
        window.addEventListener(type, (e) => { if (e.isTrusted) gesture = Date.now(); }, true);
      }
      const play = HTMLMediaElement.prototype.play;
      HTMLMediaElement.prototype.play = function guarded() {
        const allowed = Date.now() - gesture < 5000;
        console.info(`usher-test: play() ${allowed ? 'allowed' : 'refused'}`);
        if (!allowed) return Promise.reject(new DOMException('autoplay blocked', 'NotAllowedError'));
        return play.call(this);
      };
    },
  });
  const second = await openDevice(browser);
  try {
    await first.page.goto(ticket.watch_url);
    await waitInPage(first.page, 'the play button', () => !document.getElementById('play').hidden, undefined, 20000);
    const focusRing = async () => first.page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    await tabTo(first.page, 'play');
    assert.notEqual(await focusRing(), 'none', 'the focused button shows a focus ring');
    await first.page.keyboard.press('Enter');
    await waitForPlayback(first.page, 0.5);

    await second.page.goto(ticket.watch_url);
    await waitForState(first.page, 'superseded', 8000);
    await tabTo(first.page, 'continue-here');
    assert.notEqual(await focusRing(), 'none');
    await first.page.keyboard.press('Enter');
    await waitForState(second.page, 'superseded', 8000);
    // the seat is back; the browser still wants a gesture to play, and Enter is one
    await waitInPage(first.page, 'playing or the play button', () =>
      document.body.dataset.state === 'playing' || !document.getElementById('play').hidden, undefined, 15000);
    if (await first.page.evaluate(() => document.body.dataset.state !== 'playing')) {
      await tabTo(first.page, 'play');
      await first.page.keyboard.press('Enter');
    }
    await waitForPlayback(first.page, 0.5);
    assert.deepEqual(first.page.pageErrors, []);
  } finally {
    await first.context.close();
    await second.context.close();
  }
});

test('the watch page honours reduced motion, and what it says is in a live region', async () => {
  const show = await createShow(server, { startsInMs: 3600_000, endsInMs: 7200_000 });
  const ticket = await createTicket(server, show.id);
  const transition = async (reducedMotion) => {
    const { context, page } = await device({ reducedMotion });
    try {
      await page.goto(ticket.watch_url);
      await waitForState(page, 'not_started');
      const live = await page.evaluate(() => document.getElementById('status').closest('[aria-live]')?.getAttribute('aria-live'));
      assert.equal(live, 'polite', 'the status is inside a live region');
      return await page.evaluate(() => getComputedStyle(document.getElementById('retry')).transitionDuration);
    } finally {
      await context.close();
    }
  };
  assert.notEqual(await transition('no-preference'), '0s', 'buttons animate by default');
  assert.equal(await transition('reduce'), '0s', 'and not when the viewer asks for reduced motion');
});

test('subtitles the stream carries can be picked, and show', async () => {
  // a stream with the demo's 180p picture and two WebVTT subtitle renditions, made for this test
  const folder = `test-subs-${Date.now().toString(36)}`;
  const dir = join(server.mediaDir, folder);
  await cp(join(server.mediaDir, 'demo', '180p'), join(dir, '180p'), { recursive: true });
  // the demo's segments start at PTS 135000 (1.5 s): the cues' time 0 is the picture's first frame
  const cues = (text) => `WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:135000,LOCAL:00:00:00.000\n\n00:00:00.000 --> 00:01:04.000\n${text}\n`;
  for (const [lang, text] of [['en', 'Hello from the subtitles'], ['de', 'Hallo aus den Untertiteln']]) {
    await mkdir(join(dir, 'subs', lang), { recursive: true });
    await writeFile(join(dir, 'subs', lang, 'cues.vtt'), cues(text));
    await writeFile(join(dir, 'subs', lang, 'index.m3u8'),
      '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:64\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:64.0,\ncues.vtt\n#EXT-X-ENDLIST\n');
  }
  await writeFile(join(dir, 'master.m3u8'), ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-INDEPENDENT-SEGMENTS',
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=NO,URI="subs/en/index.m3u8"',
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Deutsch",LANGUAGE="de",DEFAULT=NO,AUTOSELECT=NO,URI="subs/de/index.m3u8"',
    '#EXT-X-STREAM-INF:BANDWIDTH=238384,RESOLUTION=320x180,CODECS="avc1.42c01e,mp4a.40.2",SUBTITLES="subs"',
    '180p/index.m3u8', ''].join('\n'));
  const { context, page } = await device();
  try {
    const show = await createShow(server, { streamPath: folder });
    const ticket = await createTicket(server, show.id);
    await page.goto(ticket.watch_url);
    await waitForPlayback(page, 0.5);
    await waitInPage(page, 'the subtitle picker', () => !document.getElementById('subtitles-field').hidden);
    const options = await page.locator('#subtitles option').allInnerTexts();
    assert.deepEqual(options, ['Off', 'English', 'Deutsch']);
    assert.equal(await page.locator('#subtitles').inputValue(), '-1', 'off until picked');
    assert.ok(await page.locator('#audio-field').isHidden(), 'one audio track: no audio picker');

    // by keyboard: focus the picker, choose German
    await page.focus('#subtitles');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await waitInPage(page, 'a German cue on screen', () => {
      const v = document.getElementById('player');
      return [...v.textTracks].some((t) => t.mode === 'showing' && t.activeCues
        && [...t.activeCues].some((c) => c.text === 'Hallo aus den Untertiteln'));
    }, undefined, 15000);
    assert.deepEqual(await violations(page, 'playing with subtitles'), []);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await context.close();
    await rm(dir, { recursive: true, force: true });
  }
});
