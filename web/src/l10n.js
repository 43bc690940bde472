// The viewer pages' languages: the messages of web/locales/*.ftl (Project Fluent) that the server put in
// the page (`#usher-l10n`: English, then the page's language, which overrides it), the language picker
// (`#language`: remembered in the `usher_lang` cookie, which the server reads too), and the elements
// whose text is a message (`data-l10n`, `data-l10n-label` for aria-label, `data-l10n-alt` for alt).
import { FluentBundle, FluentResource } from '@fluent/bundle';

const COOKIE = 'usher_lang';

let lang = 'en';
let languages = ['en'];
let english = '';
let bundle = null;
const listeners = [];

function makeBundle(code, sources) {
  const made = new FluentBundle(code, { useIsolating: false });
  sources.forEach((source, i) => {
    made.addResource(new FluentResource(source), { allowOverrides: i > 0 });
  });
  return made;
}

function readConfig() {
  try {
    return JSON.parse(document.getElementById('usher-l10n').textContent) || {};
  } catch (err) {
    return {};
  }
}

// The text of message `id` (or `id.attribute`) with `args`; the id itself when no language has it.
export function t(id, args) {
  if (!bundle) return id;
  const [name, attribute] = id.split('.');
  const message = bundle.getMessage(name);
  const pattern = message && (attribute ? message.attributes[attribute] : message.value);
  if (!pattern) return id;
  return bundle.formatPattern(pattern, args, []);
}

// The page's language (a BCP 47 code), for Intl formatting.
export const currentLang = () => lang;

// Calls `fn(code)` after the viewer picked another language and the page's messages changed.
export function onLanguageChange(fn) {
  listeners.push(fn);
}

export function translateDom(root = document) {
  for (const el of root.querySelectorAll('[data-l10n]')) el.textContent = t(el.dataset.l10n);
  for (const el of root.querySelectorAll('[data-l10n-label]')) el.setAttribute('aria-label', t(el.dataset.l10nLabel));
  for (const el of root.querySelectorAll('[data-l10n-alt]')) el.setAttribute('alt', t(el.dataset.l10nAlt));
}

async function setLanguage(code) {
  if (!languages.includes(code) || code === lang) return;
  const secure = window.location.protocol === 'https:' ? '; Secure' : '';
  document.cookie = `${COOKIE}=${code}; Path=/; Max-Age=31536000; SameSite=Lax${secure}`;
  const sources = [english];
  if (code !== 'en') {
    const res = await fetch(`/assets/locale-${code}.ftl`, { credentials: 'same-origin' });
    if (!res.ok) throw new Error(`messages for ${code}: ${res.status}`);
    sources.push(await res.text());
  }
  bundle = makeBundle(code, sources);
  lang = code;
  document.documentElement.lang = code;
  translateDom();
  for (const fn of listeners) fn(code);
}

export function initL10n() {
  const config = readConfig();
  const sources = Array.isArray(config.sources) && config.sources.length ? config.sources : [''];
  lang = config.lang || 'en';
  languages = Array.isArray(config.languages) ? config.languages : ['en'];
  english = sources[0];
  bundle = makeBundle(lang, sources);
  const picker = document.getElementById('language');
  if (picker) {
    picker.value = lang;
    picker.addEventListener('change', () => {
      setLanguage(picker.value).catch((err) => {
        console.warn('usher: switching language', err);
        picker.value = lang;
      });
    });
  }
}

// Whether message `id` (or `id.attribute`) exists.
export function has(id) {
  if (!bundle) return false;
  const [name, attribute] = id.split('.');
  const message = bundle.getMessage(name);
  return !!(message && (attribute ? message.attributes[attribute] : message.value));
}
