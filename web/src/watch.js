// Usher's watch page: admits this browser to the show, plays it with hls.js, keeps the lease alive with
// heartbeats, puts the current grant into every media request, and explains every refusal in plain words.
//
// The server renders the page with a JSON config (`#usher-config`) and the state it saw; from then on this
// script owns `<body data-state>`: ready, playing, not_started, ended, refused, superseded, in_use, revoked.
import Hls from 'hls.js';
import { currentLang, has, initL10n, onLanguageChange, t } from './l10n.js';

const $ = (id) => document.getElementById(id);
const video = $('player');
const statusEl = $('status');
const hintEl = $('hint');
const countdownEl = $('countdown');
const continueBtn = $('continue-here');
const retryBtn = $('retry');
const unmuteBtn = $('unmute');
const playBtn = $('play');
const tracksEl = $('tracks');
const subtitlesSel = $('subtitles');
const audioSel = $('audio');

initL10n();

const config = readConfig();
// The server's clock decides when the window opens; remember how far ours is off.
const clockOffsetMs = typeof config.server_now_ms === 'number' ? config.server_now_ms - Date.now() : 0;
const serverNow = () => Date.now() + clockOffsetMs;
const isVod = !!(config.show && config.show.kind === 'vod');

let session = null; // { id, interval, grants }
let hls = null;
let generation = 0; // bumped by every admit and stop, so late answers for an older session are dropped
let heartbeatTimer = 0;
let retryTimer = 0;
let countdownTimer = 0;
let heartbeatInFlight = null;
let lastGrantRefresh = 0;
let reconnects = 0; // consecutive fatal network errors, reset once the picture moves again
let countdownAdmits = 0;
let resumeAt = 0; // VOD position to resume from after a stop (superseded, expired lease…)
let leftOnHide = false;

// The message (web/locales) for each stable problem `code` of the viewer API, with the state it puts the
// page in; its `.hint` attribute, when it has one, is the hint.
const REFUSALS = {
  ticket_unknown: ['refused', 'ticket-unknown'],
  no_ticket: ['refused', 'no-ticket'],
  ticket_revoked: ['revoked', 'ticket-revoked'],
  show_unpublished: ['refused', 'show-unpublished'],
  rate_limited: ['refused', 'rate-limited'],
  ended: ['ended', 'ended'],
  session_ended: ['refused', 'session-ended'],
  forbidden: ['refused', 'forbidden'],
};

// A message of web/locales with its arguments (an object, or a function making them, so times and
// country names are formatted again in a newly picked language).
const msg = (id, args) => ({ id, args });
const hintOf = (id) => (has(`${id}.hint`) ? `${id}.hint` : '');

function text(message) {
  if (!message) return '';
  if (typeof message === 'string') return t(message);
  return t(message.id, typeof message.args === 'function' ? message.args() : message.args);
}

// "DE" → "Germany" in the page's language; the code itself where the browser cannot name it.
function countryName(code) {
  try {
    return new Intl.DisplayNames([currentLang()], { type: 'region' }).of(code) || code;
  } catch (err) {
    return code;
  }
}

function readConfig() {
  try {
    return JSON.parse($('usher-config').textContent) || {};
  } catch (err) {
    return {};
  }
}

let view = null; // what setState last showed, to show again in another language

// Shows `message` (and an optional hint and action button) for `state`: messages are ids of
// web/locales (or msg(id, args)).
function setState(state, message, hint = '', action = null) {
  view = { state, message, hint, action };
  document.body.dataset.state = state;
  statusEl.textContent = text(message);
  hintEl.textContent = text(hint);
  continueBtn.hidden = action !== 'continue';
  retryBtn.hidden = action !== 'retry';
  playBtn.hidden = action !== 'play';
  if (state !== 'not_started') countdownEl.textContent = '';
}

const currentState = () => document.body.dataset.state;

function clearTimers() {
  clearTimeout(heartbeatTimer);
  clearTimeout(retryTimer);
  clearTimeout(countdownTimer);
}

// ---- admit ---------------------------------------------------------------------------------------------

async function admit({ quiet = false, retried = false } = {}) {
  clearTimers();
  const gen = ++generation;
  if (!quiet) setState('ready', 'starting');
  let res;
  let body;
  try {
    res = await postJson(config.admit_url || '/api/v1/playback');
    body = await readBody(res);
  } catch (err) {
    if (gen !== generation) return;
    stop();
    setState('ready', 'no-connection', msg('no-connection.hint', { seconds: 5 }), 'retry');
    retryTimer = setTimeout(() => admit({ quiet: true }), 5000);
    return;
  }
  if (gen !== generation) return;
  if (res.status === 202 && body && body.waiting) {
    waitInLine(body);
  } else if (res.ok && body && body.session_id) {
    countdownAdmits = 0;
    startSession(body, retried);
  } else {
    onProblem(res, body, 'admit');
  }
}

// Doors-open capacity: the show is full or letting people in at a pace; this ticket has a place in line.
// Ask again when the server says (the place is kept while the page keeps asking).
function waitInLine(body) {
  stop();
  const position = Number(body.position) || 1;
  const eta = Number(body.estimated_wait_s);
  let hint = 'waiting';
  if (Number.isFinite(eta) && eta > 0) {
    hint = eta < 90
      ? msg('waiting-seconds', { seconds: Math.max(1, Math.round(eta / 10) * 10) })
      : msg('waiting-minutes', { minutes: Math.round(eta / 60) });
  }
  setState('waiting', position === 1 ? 'waiting-next' : msg('waiting-position', { position }), hint);
  document.body.dataset.position = String(position);
  // ±25 %: a crowd let into the line together would otherwise ask again all in the same instant
  const wait = Math.max(1, Number(body.retry_after_s) || 2) * (0.75 + Math.random() / 2);
  retryTimer = setTimeout(() => admit({ quiet: true }), wait * 1000);
}

function startSession(body, retried) {
  if (currentState() !== 'playing') setState('ready', 'starting');
  session = {
    id: body.session_id,
    interval: intervalSeconds(body.heartbeat_interval_s),
    grants: Array.isArray(body.grants) ? body.grants : [],
    cdnOrder: body.cdn_order,
    startedAt: Date.now(),
    retried,
  };
  startPlayer(body.playlist_url);
  scheduleHeartbeat(session.interval);
}

// ---- heartbeats and fresh grants -----------------------------------------------------------------------

function intervalSeconds(value) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.max(1, n) : 15;
}

function scheduleHeartbeat(seconds) {
  clearTimeout(heartbeatTimer);
  heartbeatTimer = setTimeout(heartbeat, seconds * 1000);
}

function heartbeat() {
  if (!session) return Promise.resolve();
  if (heartbeatInFlight) return heartbeatInFlight;
  clearTimeout(heartbeatTimer);
  const gen = generation;
  const current = session;
  heartbeatInFlight = (async () => {
    let res;
    let body;
    try {
      res = await postJson(`/api/v1/playback/${encodeURIComponent(current.id)}/heartbeat`);
      body = await readBody(res);
    } catch (err) {
      // Network trouble: keep playing on the grant we hold and try again soon.
      if (gen === generation) scheduleHeartbeat(Math.min(current.interval, 5));
      return;
    }
    if (gen !== generation) return;
    if (res.ok) {
      if (body && Array.isArray(body.grants)) current.grants = body.grants;
      if (body) {
        current.cdnOrder = body.cdn_order;
        applyCdnOrder(body.cdn_order);
      }
      if (body && body.heartbeat_interval_s) current.interval = intervalSeconds(body.heartbeat_interval_s);
      scheduleHeartbeat(current.interval);
    } else {
      onProblem(res, body, 'heartbeat');
    }
  })().finally(() => {
    heartbeatInFlight = null;
  });
  return heartbeatInFlight;
}

// A media request was refused: the grant probably expired, so ask for a fresh one at once (debounced).
function refreshGrants() {
  if (heartbeatInFlight) return heartbeatInFlight;
  if (Date.now() - lastGrantRefresh < 1000) return Promise.resolve();
  lastGrantRefresh = Date.now();
  return heartbeat();
}

// Puts the current grant into a media URL. Each grant covers the folder under its `base_url`, as a path
// segment right after it (`token`: Usher's origin, nginx or Bunny path forms) or as a query string
// (`query`); the grant whose base_url prefixes the URL (the longest) gives its freshest value.
function withGrant(url) {
  if (!session || !session.grants.length) return url;
  let target;
  try {
    target = new URL(url, location.href);
  } catch (err) {
    return url;
  }
  let best = null;
  let bestPrefix = '';
  for (const grant of session.grants) {
    if (!grant || !grant.base_url || !(grant.token || grant.query)) continue;
    let base;
    try {
      base = new URL(grant.base_url, location.href);
    } catch (err) {
      continue;
    }
    const prefix = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
    if (base.origin === target.origin && target.pathname.startsWith(prefix) && prefix.length > bestPrefix.length) {
      best = grant;
      bestPrefix = prefix;
    }
  }
  if (!best) return url;
  if (best.token) {
    const rest = target.pathname.slice(bestPrefix.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return url;
    target.pathname = bestPrefix + best.token + rest.slice(slash);
  } else {
    // keep the URL's other parameters, replace the grant's (raw: signatures must not be re-encoded)
    const names = best.query.split('&').map((p) => p.split('=')[0]);
    const kept = target.search.slice(1).split('&').filter((p) => p && !names.includes(p.split('=')[0]));
    target.search = [...kept, best.query].join('&');
  }
  return target.href;
}

// Every request hls.js makes: media URLs get the freshest grant; steering reloads say that this player
// swaps grants itself (so the server sends no grant clones, which only native players need).
function forUsher(url) {
  if (/\/hls\/[^/]+\/steering\.json(\?|$)/.test(url) && !/[?&]usher_player=/.test(url)) {
    return `${url}${url.includes('?') ? '&' : '?'}usher_player=web`;
  }
  return withGrant(url);
}

// The server's CDN order (enabled, healthy CDNs, best first) from admit and every heartbeat: hls.js
// switches pathway at once instead of waiting for its next steering reload.
function applyCdnOrder(order) {
  if (!hls || !Array.isArray(order) || !order.length) return;
  let known;
  try {
    known = hls.pathways || [];
  } catch (err) {
    return;
  }
  const wanted = order.filter((id) => known.includes(id));
  if (!wanted.length) return;
  const current = hls.pathwayPriority || [];
  if (wanted.length === current.length && wanted.every((id, i) => current[i] === id)) return;
  try {
    hls.pathwayPriority = wanted;
    console.info('usher: CDN order', wanted.join(' > '));
  } catch (err) {
    console.warn('usher: could not apply the CDN order', err);
  }
}

// ---- refusals ------------------------------------------------------------------------------------------

function retryAfterSeconds(res, body, fallback) {
  const fromBody = body && Number(body.retry_after_s);
  if (fromBody > 0) return Math.ceil(fromBody);
  const header = res && Number(res.headers.get('Retry-After'));
  if (header > 0) return Math.ceil(header);
  return fallback;
}

function onProblem(res, body, phase) {
  let code = (body && body.code) || (res.status === 401 ? 'no_ticket' : '');
  if (!code && (res.status >= 500 || res.status === 429)) code = 'store_unavailable';
  switch (code) {
    case 'session_expired':
      // The lease lapsed (a sleeping laptop, a long network cut): just come back in.
      return admit({ quiet: true });
    case 'session_ended':
      // Right after admit this is the previous page's leave beacon (a reload) overtaking us: come back in.
      if (phase === 'heartbeat' && session && Date.now() - session.startedAt < 10000 && !session.retried) {
        return admit({ quiet: true, retried: true });
      }
      break;
    case 'store_unavailable':
    case 'rate_limited': {
      const wait = retryAfterSeconds(res, body, 5);
      if (phase === 'heartbeat') {
        scheduleHeartbeat(Math.min(wait, session ? session.interval : wait)); // keep playing
        return undefined;
      }
      setState('ready', 'busy', msg('busy.hint', { seconds: wait }), 'retry');
      retryTimer = setTimeout(() => admit({ quiet: true }), wait * 1000);
      return undefined;
    }
    case 'superseded': {
      stop();
      const device = body && body.superseded_by;
      const at = body && body.superseded_at;
      let message = 'superseded';
      if (device && formatTime(at)) message = msg('superseded-by-at', () => ({ device, time: formatTime(at) }));
      else if (device) message = msg('superseded-by', { device });
      setState('superseded', message, 'superseded-hint', 'continue');
      return undefined;
    }
    case 'session_cloned':
      // Someone copied this browser's session (its cookies) and their player renewed first.
      stop();
      setState('superseded', 'cloned', 'cloned.hint', 'continue');
      return undefined;
    case 'session_secret_required':
    case 'session_secret_invalid':
      // The session's cookie is gone (cleared, or a session begun before an upgrade): come back in once.
      if (phase === 'heartbeat' && session && !session.retried) {
        return admit({ quiet: true, retried: true });
      }
      break;
    case 'ticket_in_use': {
      stop();
      const wait = retryAfterSeconds(res, body, 15);
      setState('in_use', 'in-use', msg('in-use.hint', { seconds: wait }), 'retry');
      retryTimer = setTimeout(() => admit({ quiet: true }), wait * 1000);
      return undefined;
    }
    case 'not_started': {
      stop();
      const startsAt = Date.parse(body && body.starts_at) || config.starts_at_ms;
      return startCountdown(startsAt);
    }
    default:
      break;
  }
  stop();
  if (code === 'geo_blocked') {
    const country = body && body.country;
    return setState('refused', 'geo-blocked', country
      ? msg('geo-blocked-country', () => ({ country: countryName(country) }))
      : 'geo-blocked-unknown');
  }
  const known = REFUSALS[code];
  if (known) return setState(known[0], known[1], hintOf(known[1]), code === 'session_ended' ? 'continue' : null);
  if (code) console.warn('usher: refused with', code);
  return setState('refused', 'refused', 'refused.hint', 'retry');
}

// ---- the player ----------------------------------------------------------------------------------------

function loadPolicy(maxTimeToFirstByteMs, maxNumRetry) {
  // 4xx are not retried by default; a 401/403/410 here means "fresh grant needed", which refreshGrants
  // fetches at once, so retry those too: the retry's request then carries the new grant.
  const shouldRetry = (retryConfig, retryCount, isTimeout, response, retry) =>
    retry || (!!response && [401, 403, 410].includes(response.code) && retryCount < retryConfig.maxNumRetry);
  return {
    default: {
      maxTimeToFirstByteMs,
      maxLoadTimeMs: 20000,
      timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
      errorRetry: { maxNumRetry, retryDelayMs: 500, maxRetryDelayMs: 4000, shouldRetry },
    },
  };
}

function startPlayer(playlistUrl) {
  teardown();
  if (!playlistUrl) {
    setState('refused', 'nothing-to-play', 'nothing-to-play.hint', 'retry');
    return;
  }
  // hls.js first: Chromium also plays HLS natively, but that path would bypass the grant handling.
  if (Hls.isSupported()) {
    const instance = new Hls({
      startPosition: resumeAt > 0 ? resumeAt : -1,
      // Buffer ~30 s ahead, not hls.js's default of up to 600 s for low bitrates: a viewer who leaves
      // early does not cost minutes of CDN traffic, and a CDN change applies within seconds.
      maxBufferLength: 20,
      maxMaxBufferLength: 30,
      xhrSetup: (xhr, url) => xhr.open('GET', forUsher(url), true),
      fetchSetup: (context, init) => new Request(forUsher(context.url), init),
      manifestLoadPolicy: loadPolicy(10000, 2),
      playlistLoadPolicy: loadPolicy(10000, 4),
      fragLoadPolicy: loadPolicy(10000, 4),
    });
    hls = instance;
    instance.on(Hls.Events.ERROR, (event, data) => onHlsError(instance, data));
    instance.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (event, data) => showTracks(instance, data.subtitleTracks, null));
    instance.on(Hls.Events.AUDIO_TRACKS_UPDATED, (event, data) => showTracks(instance, null, data.audioTracks));
    instance.on(Hls.Events.MANIFEST_PARSED, () => {
      if (session) applyCdnOrder(session.cdnOrder);
      startPlaying();
    });
    instance.loadSource(playlistUrl);
    instance.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    // Native HLS (Safari, iOS): the personalized master carries the grant in its path.
    video.src = playlistUrl;
    video.addEventListener('loadedmetadata', () => {
      if (resumeAt > 0) video.currentTime = resumeAt;
      startPlaying();
    }, { once: true });
    video.load();
  } else {
    setState('refused', 'unsupported-browser', 'unsupported-browser.hint');
  }
}

// A track's name in a picker: its NAME, else its language named in the page's language.
function trackName(track, i) {
  if (track.name) return track.name;
  if (track.lang) {
    try {
      return new Intl.DisplayNames([currentLang()], { type: 'language' }).of(track.lang) || track.lang;
    } catch (err) {
      return track.lang;
    }
  }
  return String(i + 1);
}

function fillPicker(select, tracks, current, keepFirst) {
  while (select.options.length > keepFirst) select.remove(keepFirst);
  tracks.forEach((track, i) => select.add(new Option(trackName(track, i), String(i))));
  select.value = String(current);
}

// Subtitles (any) and audio tracks (more than one) the stream carries get a picker under the player.
function showTracks(instance, subtitles, audio) {
  if (instance !== hls) return;
  if (subtitles) {
    fillPicker(subtitlesSel, subtitles, instance.subtitleTrack, 1);
    $('subtitles-field').hidden = subtitles.length === 0;
  }
  if (audio) {
    fillPicker(audioSel, audio, instance.audioTrack, 0);
    $('audio-field').hidden = audio.length < 2;
  }
  tracksEl.hidden = $('subtitles-field').hidden && $('audio-field').hidden;
}

function hideTracks() {
  tracksEl.hidden = true;
  $('subtitles-field').hidden = true;
  $('audio-field').hidden = true;
}

function onHlsError(instance, data) {
  if (instance !== hls) return;
  const status = data.response && data.response.code;
  const refused = status === 401 || status === 403 || status === 410;
  console.warn('usher: player error', data.type, data.details, status || '', data.fatal ? 'fatal' : '');
  if (refused) refreshGrants();
  if (!data.fatal) return;
  if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
    instance.recoverMediaError();
    return;
  }
  if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
    reconnect(instance, refused);
    return;
  }
  stop();
  setState('refused', 'playback-failed', 'playback-failed.hint', 'retry');
}

// The player gave up on the network: come back in (a fresh session, playlist and grant) with a growing pause.
// A refusal in the heartbeat fetched on the way (superseded, revoked…) stops the player instead.
function reconnect(instance, needGrant) {
  const delay = reconnects === 0 ? 0 : Math.min(1000 * 2 ** reconnects, 15000);
  reconnects += 1;
  if (reconnects > 1) setState('ready', 'reconnecting', 'reconnecting.hint');
  (needGrant ? refreshGrants() : Promise.resolve()).then(() => {
    if (instance !== hls || !session) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => admit({ quiet: true }), delay);
  });
}

function startPlaying() {
  const attempt = video.play();
  if (!attempt || !attempt.catch) return;
  attempt.catch((err) => {
    if (!err || err.name !== 'NotAllowedError') return;
    // Autoplay with sound is blocked: play muted and offer to unmute.
    video.muted = true;
    unmuteBtn.hidden = false;
    video.play().catch(() => {
      if (currentState() === 'ready') setState('ready', 'press-play', '', 'play');
    });
  });
}

// Releases the player; remembers the VOD position so a later admit resumes there.
function teardown() {
  if (isVod && video.currentTime > 0) resumeAt = video.currentTime;
  if (hls) {
    const instance = hls;
    hls = null;
    instance.destroy();
  }
  hideTracks();
  if (video.getAttribute('src')) {
    video.pause();
    video.removeAttribute('src');
    video.load();
  }
}

// Stops playback and forgets the session (the server has already ended it, or will).
function stop() {
  clearTimers();
  generation += 1;
  session = null;
  teardown();
  video.pause();
  unmuteBtn.hidden = true;
}

// ---- countdown -----------------------------------------------------------------------------------------

function startCountdown(startsAtMs) {
  clearTimers();
  if (!startsAtMs) {
    setState('not_started', 'not-started', 'not-started.hint');
    countdownTimer = setTimeout(() => admit({ quiet: true }), 30000);
    return;
  }
  let shown = false; // the server rendered this state with its own words: say it in the page's once
  const tick = () => {
    const left = startsAtMs - serverNow();
    if (left <= 0) {
      // Admit at once; if the server still says "not started", give its clock a second each time.
      countdownAdmits += 1;
      countdownEl.textContent = formatDuration(0);
      countdownTimer = setTimeout(() => admit({ quiet: true }), countdownAdmits > 1 ? 1000 : 0);
      return;
    }
    if (!shown || currentState() !== 'not_started') {
      shown = true;
      setState('not_started', 'not-started', msg('starts-at', () => ({ time: formatDateTime(startsAtMs) })));
    }
    countdownEl.textContent = formatDuration(left);
    countdownTimer = setTimeout(tick, (left % 1000) + 20);
  };
  tick();
}

function formatDuration(ms) {
  const total = Math.ceil(ms / 1000);
  const days = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n) => String(n).padStart(2, '0');
  const clock = h || days ? `${two(h)}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
  return days ? t('countdown-days', { days, clock }) : clock;
}

function formatTime(value) {
  const date = new Date(value);
  if (!value || Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString(currentLang(), { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function formatDateTime(ms) {
  return new Date(ms).toLocaleString(currentLang(), { dateStyle: 'medium', timeStyle: 'short' });
}

// ---- plumbing ------------------------------------------------------------------------------------------

function postJson(url) {
  return fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, application/problem+json' },
    body: '{}',
  });
}

async function readBody(res) {
  try {
    return await res.json();
  } catch (err) {
    return null;
  }
}

// ---- wiring --------------------------------------------------------------------------------------------

video.addEventListener('playing', () => {
  reconnects = 0;
  if (currentState() === 'ready') setState('playing', 'playing');
});
video.addEventListener('error', () => {
  // Native HLS cannot swap grants: when it fails, come back in for a fresh playlist.
  if (!hls && session && video.getAttribute('src')) reconnect(null, true);
});
video.addEventListener('volumechange', () => {
  if (!video.muted) unmuteBtn.hidden = true;
});
unmuteBtn.addEventListener('click', () => {
  video.muted = false;
  unmuteBtn.hidden = true;
  video.play().catch(() => {});
});
continueBtn.addEventListener('click', () => admit());
subtitlesSel.addEventListener('change', () => {
  if (!hls) return;
  hls.subtitleDisplay = true;
  hls.subtitleTrack = Number(subtitlesSel.value);
});
audioSel.addEventListener('change', () => {
  if (hls) hls.audioTrack = Number(audioSel.value);
});
playBtn.addEventListener('click', () => {
  playBtn.hidden = true;
  video.play().catch(() => { playBtn.hidden = false; });
});
retryBtn.addEventListener('click', () => admit());

window.addEventListener('pagehide', () => {
  if (!session) return;
  // Free the lease at once; a page restored from the back/forward cache admits again.
  navigator.sendBeacon(`/api/v1/playback/${encodeURIComponent(session.id)}/leave`);
  stop();
  leftOnHide = true;
});
window.addEventListener('pageshow', (event) => {
  if (event.persisted && leftOnHide) {
    leftOnHide = false;
    admit();
  }
});

function formatTimes() {
  for (const el of document.querySelectorAll('time[datetime]')) {
    const ms = Date.parse(el.getAttribute('datetime'));
    if (!Number.isNaN(ms)) el.textContent = formatDateTime(ms);
  }
}
formatTimes();

// Another language picked: the show's title and description in it, times, and what the page says now.
onLanguageChange((code) => {
  const texts = (config.show && config.show.texts && config.show.texts[code]) || null;
  if (texts) {
    if ($('title')) $('title').textContent = texts.title;
    if ($('description')) $('description').textContent = texts.description;
    video.setAttribute('aria-label', texts.title);
    document.title = `${texts.title} · Usher`;
  } else if (!config.show) {
    video.setAttribute('aria-label', t('player'));
  }
  formatTimes();
  if (hls) showTracks(hls, hls.subtitleTracks, hls.audioTracks);
  if (view) setState(view.state, view.message, view.hint, view.action);
});

function boot() {
  switch (config.state) {
    case 'ready':
      return admit();
    case 'not_started':
      return startCountdown(config.starts_at_ms);
    case 'ended':
      return setState('ended', 'ended', 'ended.hint');
    default: {
      const refusal = config.refusal || {};
      const known = REFUSALS[refusal.code];
      if (known) return setState(known[0], known[1], hintOf(known[1]));
      const id = refusal.message && has(refusal.message) ? refusal.message : 'refused';
      return setState('refused', id, hintOf(id));
    }
  }
}

boot();
