// The TV sign-in page (/tv): ask for a code, show it with its QR code, poll at the interval the server
// says (RFC 8628: `slow_down` grows it), make a new code when one lapses, and open the watch page once a
// phone approved. And the phone's page (/activate): send the typed code with the ticket cookie.

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

function say(text) {
  $('status').textContent = text;
}

async function tvPage() {
  const body = document.body;
  for (;;) {
    body.dataset.state = 'loading';
    const made = await call('/api/v1/tv/codes');
    if (made.status !== 200) {
      say(made.status === 429 ? 'Too many codes from this network; waiting a moment…' : 'Cannot get a code now; trying again…');
      await sleep(Math.max(made.retryAfter, 5) * 1000);
      continue;
    }
    const code = made.json;
    $('user-code').textContent = code.user_code;
    const qr = $('qr');
    qr.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(code.qr_svg)}`;
    qr.hidden = false;
    body.dataset.state = 'waiting';
    say('Waiting for your phone…');
    const lapses = Date.now() + code.expires_in * 1000;
    let interval = code.interval;
    while (Date.now() < lapses) {
      await sleep(interval * 1000);
      const polled = await call('/api/v1/tv/token', { device_code: code.device_code });
      if (polled.status === 200) {
        body.dataset.state = 'approved';
        say('Approved. Starting…');
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
    say('The code lapsed; here is a new one.');
  }
}

function activatePage() {
  const form = $('approve');
  if (!form) return; // a refusal: nothing to send
  const input = $('user-code');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    document.body.dataset.state = 'sending';
    say('Approving…');
    try {
      const res = await call('/api/v1/tv/activate', { user_code: input.value });
      if (res.status === 200) {
        document.body.dataset.state = 'approved';
        say(`Done: the TV starts ${res.json.show_title} in a few seconds.`);
        form.hidden = true;
        return;
      }
      document.body.dataset.state = 'refused';
      say(res.json.title || 'This did not work; try again.');
      input.focus();
    } catch {
      document.body.dataset.state = 'refused';
      say('No connection; try again.');
    } finally {
      button.disabled = false;
    }
  });
  if (!input.value) input.focus();
}

if (document.body.dataset.page === 'tv') tvPage();
if (document.body.dataset.page === 'activate') activatePage();
