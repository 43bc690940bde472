// The TV sign-in page (/tv): ask for a code, show it with its QR code, poll at the interval the server
// says (RFC 8628: `slow_down` grows it), make a new code when one lapses, and open the watch page once a
// phone approved. And the phone's page (/activate): send the typed code with the ticket cookie.

import { initL10n, onLanguageChange, t } from './l10n.js';

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function call(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = {};
  try { json = await res.json(); } catch { /* an empty or non-JSON answer */ }
  return { status: res.status, retryAfter: Number(res.headers.get('retry-after')) || 0, json };
}

let said = null; // the message shown, to show again in another language

// Shows message `id` of web/locales (with `args`) as the page's status.
function say(id, args) {
  said = [id, args];
  $('status').textContent = t(id, args);
}

initL10n();
onLanguageChange(() => {
  if (said) say(...said);
});

async function tvPage() {
  const body = document.body;
  for (;;) {
    body.dataset.state = 'loading';
    const made = await call('/api/v1/tv/codes');
    if (made.status !== 200) {
      say(made.status === 429 ? 'tv-too-many-codes' : 'tv-no-code');
      await sleep(Math.max(made.retryAfter, 5) * 1000);
      continue;
    }
    const code = made.json;
    $('user-code').textContent = code.user_code;
    const qr = $('qr');
    qr.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(code.qr_svg)}`;
    qr.hidden = false;
    body.dataset.state = 'waiting';
    say('tv-waiting');
    const lapses = Date.now() + code.expires_in * 1000;
    let interval = code.interval;
    while (Date.now() < lapses) {
      await sleep(interval * 1000);
      const polled = await call('/api/v1/tv/token', { device_code: code.device_code });
      if (polled.status === 200) {
        body.dataset.state = 'approved';
        say('tv-approved');
        window.location.assign(polled.json.watch_url || '/watch');
        return;
      }
      const error = polled.json.code;
      if (error === 'authorization_pending' || error === 'slow_down') {
        interval = polled.json.interval || interval + 5;
      } else if (error === 'expired_token') {
        break;
      } else {
        // a limit or an outage: wait as told, keep the code
        interval = Math.max(interval, polled.retryAfter);
      }
    }
    say('tv-code-lapsed');
  }
}

// The approval's refusals the page names (web/locales); any other is "this did not work".
const ACTIVATE_REFUSALS = {
  tv_code_unknown: 'activate-code-unknown',
  no_ticket: 'activate-no-ticket',
  ticket_unknown: 'ticket-unknown',
  ticket_revoked: 'ticket-revoked',
  show_unpublished: 'show-unpublished',
  ended: 'ended',
  rate_limited: 'rate-limited',
};

function activatePage() {
  const form = $('approve');
  if (!form) return; // a refusal: nothing to send
  const input = $('user-code');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    document.body.dataset.state = 'sending';
    say('activate-approving');
    try {
      const res = await call('/api/v1/tv/activate', { user_code: input.value });
      if (res.status === 200) {
        document.body.dataset.state = 'approved';
        say('activate-done', { title: res.json.show_title });
        form.hidden = true;
        return;
      }
      document.body.dataset.state = 'refused';
      say(ACTIVATE_REFUSALS[res.json.code] || 'activate-failed');
      input.focus();
    } catch {
      document.body.dataset.state = 'refused';
      say('activate-no-connection');
    } finally {
      button.disabled = false;
    }
  });
  if (!input.value) input.focus();
}

if (document.body.dataset.page === 'tv') tvPage();
if (document.body.dataset.page === 'activate') activatePage();
