// Tenant branding at run time: GET /branding -> title, logo or text mark,
// favicon, and colors as CSS custom properties on <html>.  Every color that
// carries text is checked for WCAG contrast here (4.5:1 for text, 3:1 for
// focus rings and field borders); the text on the primary color is black or
// white, whichever contrasts more (for any color one of them reaches 4.5:1).

import {BASE} from './api.js';

const DEFAULTS = {
	tenant_code: '', display_name: 'Client portal', logo_url: null, favicon_url: null,
	colors: {primary: '#4f46e5', accent: '#0ea5e9', background: '#ffffff', text: '#111827'},
	support_email: null, locale: 'en',
};
const CACHE_KEY = 'atrium.branding';

let current = DEFAULTS;
export const branding = () => current;

// ---- color math (sRGB, WCAG 2.x relative luminance) ----------------------

export function parseHex(hex) {
	const m = /^#?([0-9a-f]{6})$/i.exec(String(hex || '').trim());
	if (!m) return null;
	const n = parseInt(m[1], 16);
	return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
export function toHex(rgb) {
	return '#' + rgb.map((v) => Math.round(Math.max(0, Math.min(255, v))).toString(16).padStart(2, '0')).join('');
}
export function luminance(hex) {
	const [r, g, b] = parseHex(hex).map((v) => {
		const c = v / 255;
		return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
	});
	return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
export function contrast(a, b) {
	const la = luminance(a), lb = luminance(b);
	return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}
// a..b, t = 0 gives a
export function mix(a, b, t) {
	const x = parseHex(a), y = parseHex(b);
	return toHex(x.map((v, i) => v + (y[i] - v) * t));
}
// Black or white, whichever is more readable on bg.
export function readableOn(bg) {
	return contrast('#000000', bg) >= contrast('#ffffff', bg) ? '#000000' : '#ffffff';
}
// fg moved toward black or white (away from the backgrounds) until it has
// `ratio` against every background in `bgs`.
export function ensureContrast(fg, bgs, ratio) {
	bgs = Array.isArray(bgs) ? bgs : [bgs];
	const worst = (c) => Math.min(...bgs.map((b) => contrast(c, b)));
	if (worst(fg) >= ratio) return fg;
	const target = readableOn(bgs[0]);
	let lo = 0, hi = 1;
	for (let i = 0; i < 20; i++) {
		const mid = (lo + hi) / 2;
		if (worst(mix(fg, target, mid)) >= ratio) hi = mid; else lo = mid;
	}
	return mix(fg, target, hi);
}

// ---- applying -------------------------------------------------------------

function palette(colors) {
	const c = {...DEFAULTS.colors};
	for (const k of Object.keys(c)) if (parseHex(colors?.[k])) c[k] = colors[k].toLowerCase();
	const bg = c.background;
	const text = ensureContrast(c.text, bg, 7) === c.text ? c.text : ensureContrast(c.text, bg, 4.5);
	const surface = mix(bg, text, 0.035);
	const surface2 = mix(bg, text, 0.07);
	// the background of the client's own messages: a tint of the primary
	let t = 0.1, mine = mix(bg, c.primary, t);
	while (t > 0.02 && contrast(text, mine) < 7) mine = mix(bg, c.primary, (t -= 0.02));
	const bgs = [bg, surface, surface2, mine];
	const fg = ensureContrast(text, bgs, 4.5);
	// status tones: a tinted background that keeps the text readable
	const tones = {info: '#2563eb', ok: '#16a34a', warn: '#d97706', danger: '#dc2626', muted: text};
	const p = {};
	const toneBgs = [];
	for (const [name, hue] of Object.entries(tones)) {
		let t = 0.16, tint = mix(bg, hue, t);
		while (t > 0.02 && contrast(fg, tint) < 4.5) tint = mix(bg, hue, (t -= 0.02));
		p[`--tone-${name}-bg`] = tint;
		p[`--tone-${name}-border`] = ensureContrast(hue, [tint], 3);
		toneBgs.push(tint);
	}
	const track = mix(bg, text, 0.12);
	Object.assign(p, {
		'--brand-primary': c.primary,
		'--brand-accent': c.accent,
		'--brand-background': bg,
		'--brand-text': c.text,
		'--bg': bg,
		'--text': fg,
		'--surface': surface,
		'--surface-2': surface2,
		'--mine-bg': mine,
		'--muted': ensureContrast(mix(text, bg, 0.35), bgs, 4.5),
		'--border': mix(bg, text, 0.16),
		'--field-border': ensureContrast(mix(bg, text, 0.45), bgs, 3),
		'--on-primary': readableOn(c.primary),
		'--on-accent': readableOn(c.accent),
		'--link': ensureContrast(c.primary, bgs.concat(toneBgs), 4.5),
		'--focus': ensureContrast(c.primary, bgs, 3),
		'--track': track,
		'--bar': ensureContrast(c.primary, [track, bg, surface], 3),
		'--danger-text': ensureContrast('#b91c1c', bgs, 4.5),
		'--ok-text': ensureContrast('#15803d', bgs, 4.5),
	});
	p['--focus-on-primary'] = p['--on-primary'];
	return p;
}

function initials(name) {
	// words are runs of letters or digits: "Harbor & Finch" -> HF, not H&
	const words = String(name || '').match(/[\p{L}\p{N}]+/gu) || [];
	if (!words.length) return '•';
	const chars = words.length > 1 ? [words[0], words[1]].map((w) => [...w][0]) : [...words[0]].slice(0, 1);
	return chars.join('').toUpperCase();
}

function monogramIcon(name, bg, fg) {
	const esc = (s) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
	const letter = esc(initials(name).slice(0, 2));
	const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="14" fill="${bg}"/>` +
		`<text x="32" y="43" font-family="system-ui,sans-serif" font-size="${letter.length > 1 ? 28 : 34}" font-weight="700" text-anchor="middle" fill="${fg}">${letter}</text></svg>`;
	return 'data:image/svg+xml,' + encodeURIComponent(svg);
}

function setFavicon(href) {
	let link = document.querySelector('link[rel="icon"]');
	if (!link) {
		link = document.createElement('link');
		link.rel = 'icon';
		document.head.appendChild(link);
	}
	link.href = href;
}

let pageTitle = '';
export function setTitle(page) {
	pageTitle = page || '';
	document.title = pageTitle ? `${pageTitle} · ${current.display_name}` : current.display_name;
}

export function applyBranding(b) {
	current = {...DEFAULTS, ...b, colors: {...DEFAULTS.colors, ...(b?.colors || {})}};
	const root = document.documentElement;
	for (const [k, v] of Object.entries(palette(current.colors))) root.style.setProperty(k, v);
	root.style.colorScheme = luminance(parseHex(current.colors.background) ? current.colors.background : DEFAULTS.colors.background) < 0.2 ? 'dark' : 'light';
	if (current.locale) root.lang = current.locale;
	const meta = document.querySelector('meta[name="theme-color"]');
	if (meta) meta.content = current.colors.primary;

	const name = current.display_name || DEFAULTS.display_name;
	const nameEl = document.getElementById('brand-name');
	const mark = document.getElementById('brand-mark');
	const brand = document.getElementById('brand');
	if (nameEl && mark && brand) {
		nameEl.textContent = name;
		mark.textContent = '';
		brand.classList.remove('has-logo');
		if (current.logo_url) {
			const img = new Image();
			img.alt = '';
			img.className = 'brand-logo';
			img.decoding = 'async';
			img.referrerPolicy = 'no-referrer';
			img.onload = () => {
				if (current.logo_url !== b.logo_url) return;
				mark.textContent = '';
				mark.appendChild(img);
				brand.classList.add('has-logo');
			};
			img.onerror = () => { mark.textContent = initials(name); };
			img.src = current.logo_url;
			mark.textContent = initials(name);
		} else {
			mark.textContent = initials(name);
		}
	}
	setFavicon(current.favicon_url || monogramIcon(name, current.colors.primary, readableOn(current.colors.primary)));
	setTitle(pageTitle);
	const footer = document.getElementById('site-footer');
	if (footer) {
		footer.textContent = '';
		const p = document.createElement('p');
		if (current.support_email) {
			p.append('Questions? Write to ');
			const a = document.createElement('a');
			a.href = `mailto:${current.support_email}`;
			a.textContent = current.support_email;
			p.append(a, '.');
		} else {
			p.textContent = `${name} client portal`;
		}
		footer.appendChild(p);
	}
}

// Cached branding is applied at once (no flash of default colors on reload),
// then the live answer replaces it.  Throws on failure, with .code set.
export async function loadBranding() {
	try {
		const cached = JSON.parse(localStorage.getItem(CACHE_KEY) || 'null');
		if (cached && cached.host === location.host) applyBranding(cached.b);
	} catch { /* storage disabled */ }
	let res;
	try {
		res = await fetch(`${BASE}/branding`, {headers: {Accept: 'application/json'}, credentials: 'same-origin'});
	} catch {
		const e = new Error('network');
		e.code = 'network';
		throw e;
	}
	if (!res.ok) {
		let p = null;
		try { p = await res.json(); } catch { /* not JSON */ }
		const e = new Error(p?.detail || `HTTP ${res.status}`);
		e.code = p?.code || `http_${res.status}`;
		throw e;
	}
	const b = await res.json();
	applyBranding(b);
	try { localStorage.setItem(CACHE_KEY, JSON.stringify({host: location.host, b})); } catch { /* ignore */ }
	return b;
}
