// The viewer's language: Chromium started in each of the six languages sees the countdown, a refusal and
// the takeover message in it (dates formatted for it); a language we lack gets English; the picker
// switches the page in place and the choice outlives a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openDevice, createShow, createTicket, revokeTicket, api,
  waitInPage, waitForState, waitForPlayback, statusText, messages,
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

const ZONE = 'Europe/Prague';
const hint = (page) => page.locator('#hint').innerText();
const htmlLang = (page) => page.evaluate(() => document.documentElement.lang);

// [the browser's locale, the language the pages must speak]
const LANGUAGES = [['en-GB', 'en'], ['de-DE', 'de'], ['cs-CZ', 'cs'], ['sk-SK', 'sk'], ['pl-PL', 'pl'], ['hu-HU', 'hu']];

for (const [locale, lang] of LANGUAGES) {
  test(`${lang}: countdown, refusal and takeover in the viewer's language`, async () => {
    const m = await messages(lang);
    const device = (o = {}) => openDevice(browser, { locale, timezoneId: ZONE, ...o });

    // the countdown, two days ahead, with the start formatted for the language
    const startsIn = 2 * 86400_000 + 3600_000;
    const later = await createShow(server, { startsInMs: startsIn, endsInMs: startsIn + 3600_000 });
    const early = await createTicket(server, later.id);
    const a = await device();
    try {
      await a.page.goto(early.watch_url);
      await waitForState(a.page, 'not_started');
      assert.equal(await htmlLang(a.page), lang);
      assert.equal(await statusText(a.page), m.text('not-started'));
      const startsAt = Date.parse(later.starts_at);
      const when = new Date(startsAt).toLocaleString(lang, { dateStyle: 'medium', timeStyle: 'short', timeZone: ZONE });
      assert.equal(await hint(a.page), m.text('starts-at', { time: when }));
      const countdown = await a.page.locator('#countdown').innerText();
      const clock = (countdown.match(/\d\d:\d\d:\d\d/) || [''])[0];
      assert.equal(countdown, m.text('countdown-days', { days: 2, clock }));
      assert.equal(await a.page.locator('#countdown').getAttribute('aria-label'), m.text('countdown'));
      assert.equal(await a.page.locator('#language').inputValue(), lang);
    } finally {
      await a.context.close();
    }

    // a revoked ticket: the page the server renders, in the language
    const show = await createShow(server);
    const revoked = await createTicket(server, show.id);
    await revokeTicket(server, revoked.id);
    const b = await device();
    try {
      await b.page.goto(revoked.watch_url);
      await waitForState(b.page, 'revoked');
      assert.equal(await statusText(b.page), m.text('ticket-revoked'));
      assert.equal(await hint(b.page), m.text('ticket-revoked.hint'));
    } finally {
      await b.context.close();
    }

    // a second device takes the seat: the first one says so in the language, and offers to take it back
    const ticket = await createTicket(server, show.id);
    const first = await device();
    const second = await device();
    try {
      await first.page.goto(ticket.watch_url);
      await waitForPlayback(first.page, 0.5);
      await second.page.goto(ticket.watch_url);
      await waitForState(first.page, 'superseded', 8000);
      const said = await statusText(first.page);
      assert.match(said, m.pattern('superseded-by-at', ['device', 'time']), said);
      assert.equal(await hint(first.page), m.text('superseded-hint'));
      assert.equal(await first.page.locator('#continue-here').innerText(), m.text('continue-here'));
      assert.deepEqual([...first.page.pageErrors, ...second.page.pageErrors], []);
    } finally {
      await first.context.close();
      await second.context.close();
    }
  });
}

test('a language we lack gets English, a regional variant gets its language', async () => {
  const en = await messages('en');
  const show = await createShow(server, { startsInMs: 3600_000, endsInMs: 7200_000 });
  const ticket = await createTicket(server, show.id);
  for (const [locale, lang] of [['fr-FR', 'en'], ['ja-JP', 'en'], ['de-AT', 'de']]) {
    const { context, page } = await openDevice(browser, { locale });
    try {
      await page.goto(ticket.watch_url);
      await waitForState(page, 'not_started');
      assert.equal(await htmlLang(page), lang, locale);
      if (lang === 'en') assert.equal(await statusText(page), en.text('not-started'));
    } finally {
      await context.close();
    }
  }
});

test('the picker switches the page in place, shows the title in that language, and is remembered', async () => {
  const [en, hu] = await Promise.all([messages('en'), messages('hu')]);
  const show = await createShow(server, { startsInMs: 3600_000, endsInMs: 7200_000, title: 'The concert' });
  // the seller gave a Hungarian title
  const spec = { ...show, translations: { hu: { title: 'A koncert', description: 'Magyarul.' } } };
  delete spec.id;
  const saved = await api(server, 'PUT', `/api/v1/shows/${show.id}`, server.admin_key, spec);
  assert.equal(saved.status, 200, saved.text);
  const ticket = await createTicket(server, show.id);
  const { context, page } = await openDevice(browser, { locale: 'en-US' });
  try {
    await page.goto(ticket.watch_url);
    await waitForState(page, 'not_started');
    assert.equal(await statusText(page), en.text('not-started'));
    assert.equal(await page.locator('#title').innerText(), 'The concert');

    await page.selectOption('#language', 'hu');
    await waitInPage(page, 'the Hungarian status', (want) =>
      document.getElementById('status').textContent === want, hu.text('not-started'));
    assert.equal(await htmlLang(page), 'hu');
    assert.equal(await page.locator('#title').innerText(), 'A koncert');
    assert.equal(await page.locator('label[for=language]').innerText(), hu.text('language'));
    assert.equal(await page.locator('#countdown').getAttribute('aria-label'), hu.text('countdown'));

    // the server renders the next page in the picked language, over the browser's Accept-Language
    await page.reload();
    await waitForState(page, 'not_started');
    assert.equal(await htmlLang(page), 'hu');
    assert.equal(await statusText(page), hu.text('not-started'));
    assert.equal(await page.locator('#title').innerText(), 'A koncert');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await context.close();
  }
});
