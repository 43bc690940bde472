// The admin console's progressive enhancement. Every page works without it (plain forms, server-rendered);
// this script adds: parts that refresh by themselves (data-refresh), confirmations (data-confirm), file
// uploads to the JSON API with the session's CSRF token (data-upload), resumable video uploads over tus
// with a progress bar (data-tus, tus-js-client), and country names and a filter for the country pickers
// (data-country-picker).

import { Upload } from 'tus-js-client';

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || '';

// Re-fetch the page every N seconds and swap in the fresh copy of each element with data-refresh.
function refresher(el) {
  const seconds = Number(el.dataset.refresh) || 5;
  let busy = false;
  const tick = async () => {
    if (busy || document.hidden || !el.id) return;
    busy = true;
    try {
      const res = await fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
      if (res.redirected && new URL(res.url).pathname === '/admin/login') {
        location.assign('/admin/login');
        return;
      }
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
      const fresh = doc.getElementById(el.id);
      if (fresh) {
        el.replaceChildren(...fresh.childNodes);
        el.dataset.refreshedAt = String(Date.now());
        enhance(el);
      }
      const asOf = doc.getElementById('as-of');
      const here = document.getElementById('as-of');
      if (asOf && here) here.replaceWith(asOf);
    } catch {
      // the next tick tries again
    } finally {
      busy = false;
    }
  };
  setInterval(tick, seconds * 1000);
}

function confirmations(root) {
  for (const form of root.querySelectorAll('form[data-confirm]')) {
    if (form.dataset.enhanced) continue;
    form.dataset.enhanced = '1';
    form.addEventListener('submit', (ev) => {
      if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
    });
  }
}

function uploads(root) {
  for (const form of root.querySelectorAll('form[data-upload]')) {
    if (form.dataset.enhanced) continue;
    form.dataset.enhanced = '1';
    const status = form.querySelector('[data-upload-status]');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const file = form.querySelector('input[type=file]')?.files?.[0];
      if (!file) return;
      if (status) status.textContent = `Uploading ${file.name}…`;
      const res = await fetch(form.dataset.upload, {
        method: 'PUT',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': csrf(), 'Content-Type': file.type || 'application/octet-stream' },
        body: file,
      });
      if (res.ok) {
        location.reload();
        return;
      }
      let message = `HTTP ${res.status}`;
      try {
        const p = await res.json();
        message = [p.title, p.detail].filter(Boolean).join(' ');
      } catch {
        // not a problem document
      }
      if (status) {
        status.textContent = message;
        status.classList.add('error');
      }
    });
  }
}

// The problem document's title and detail of a refused tus request, else the error's own text.
function tusMessage(err) {
  const res = err && err.originalResponse;
  if (res) {
    try {
      const p = JSON.parse(res.getBody());
      return [p.title, p.detail].filter(Boolean).join(' ');
    } catch {
      return `HTTP ${res.getStatus()}`;
    }
  }
  return String((err && err.message) || err);
}

// A video upload (tus 1.0 to /api/v1/uploads): 16 MiB PATCHes with retries, a progress bar, pause, and
// resume of an interrupted upload of the same file (tus-js-client remembers it in localStorage).
function videoUploads(root) {
  for (const form of root.querySelectorAll('form[data-tus]')) {
    if (form.dataset.enhanced) continue;
    form.dataset.enhanced = '1';
    const status = form.querySelector('[data-upload-status]');
    const bar = form.querySelector('progress');
    const pause = form.querySelector('[data-tus-pause]');
    const say = (text, error = false) => {
      status.textContent = text;
      status.classList.toggle('error', error);
    };
    let current = null;
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const file = form.querySelector('input[type=file]')?.files?.[0];
      if (!file || current) return;
      const upload = new Upload(file, {
        endpoint: form.dataset.tus,
        chunkSize: 16 * 1024 * 1024,
        retryDelays: [0, 1000, 3000, 5000, 10000],
        removeFingerprintOnSuccess: true,
        metadata: { show_id: form.dataset.show, filename: file.name, filetype: file.type || '' },
        headers: { 'X-CSRF-Token': csrf() },
        onProgress(sent, total) {
          bar.hidden = false;
          bar.max = total;
          bar.value = sent;
          const pct = total ? Math.floor((sent / total) * 100) : 100;
          say(`${pct} % of ${file.name} (${(sent / 1048576).toFixed(1)} of ${(total / 1048576).toFixed(1)} MiB)`);
        },
        onError(err) {
          current = null;
          pause.hidden = true;
          say(`Upload stopped: ${tusMessage(err)} Choose Upload again to resume.`, true);
        },
        onSuccess() {
          current = null;
          pause.hidden = true;
          bar.value = bar.max;
          say(`${file.name} uploaded: packaging is queued (below).`);
          form.dispatchEvent(new CustomEvent('usher:uploaded', { bubbles: true }));
        },
      });
      const previous = await upload.findPreviousUploads();
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        say(`Resuming ${file.name}…`);
      } else {
        say(`Uploading ${file.name}…`);
      }
      current = upload;
      pause.hidden = false;
      upload.start();
    });
    pause.addEventListener('click', async () => {
      if (!current) return;
      const upload = current;
      current = null;
      pause.hidden = true;
      await upload.abort();
      say('Paused: choose Upload again (the same file) to resume.');
    });
  }
}

function countryPickers(root) {
  let names = null;
  try {
    names = new Intl.DisplayNames([navigator.language || 'en'], { type: 'region' });
  } catch {
    names = null;
  }
  for (const select of root.querySelectorAll('select[data-country-picker]')) {
    if (select.dataset.enhanced) continue;
    select.dataset.enhanced = '1';
    for (const opt of select.options) {
      const name = names ? names.of(opt.value) : '';
      if (name && name !== opt.value) opt.textContent = `${name} (${opt.value})`;
    }
    const sorted = [...select.options].sort((a, b) => a.textContent.localeCompare(b.textContent));
    select.replaceChildren(...sorted);
    const filter = document.createElement('input');
    filter.type = 'search';
    filter.placeholder = 'Filter countries';
    filter.className = 'country-filter';
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      for (const opt of select.options) opt.hidden = q !== '' && !opt.textContent.toLowerCase().includes(q);
    });
    const chosen = document.createElement('p');
    chosen.className = 'chosen small';
    const show = () => {
      const picked = [...select.selectedOptions].map((o) => o.value);
      chosen.textContent = picked.length ? `Chosen: ${picked.join(', ')}` : 'None chosen';
    };
    select.addEventListener('change', show);
    show();
    select.before(filter);
    select.after(chosen);
  }
  for (const cell of root.querySelectorAll('[data-country]')) {
    const name = names ? names.of(cell.dataset.country) : '';
    if (name) cell.textContent = `${name} (${cell.dataset.country})`;
  }
}

function localTimes(root) {
  for (const t of root.querySelectorAll('td.small, time')) {
    const text = t.textContent.trim();
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(text)) continue;
    const d = new Date(text);
    if (Number.isNaN(d.getTime())) continue;
    t.title = text;
    t.textContent = d.toLocaleString();
  }
}

function enhance(root) {
  confirmations(root);
  uploads(root);
  videoUploads(root);
  countryPickers(root);
  localTimes(root);
}

document.addEventListener('DOMContentLoaded', () => {
  enhance(document);
  for (const el of document.querySelectorAll('[data-refresh]')) refresher(el);
});
