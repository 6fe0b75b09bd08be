// Small DOM helpers: element builder, live messages, formatting.
// Never sets a `style` attribute (the CSP forbids inline styles); dynamic
// sizes go through element.style (CSSOM), which the CSP allows.

let uid = 0;
export const nextId = (prefix = 'id') => `${prefix}-${++uid}`;

// h('button', {class: 'btn', onclick: fn, 'aria-label': '...'}, 'text', child, [more])
export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	if (attrs) {
		for (const [k, v] of Object.entries(attrs)) {
			if (v == null || v === false) continue;
			if (k === 'class') el.className = v;
			else if (k === 'text') el.textContent = v;
			else if (k === 'dataset') Object.assign(el.dataset, v);
			else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
			else if (k === 'value') el.value = v;
			else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'required' ||
			         k === 'multiple' || k === 'selected' || k === 'readOnly')
				el[k] = !!v;
			else if (k === 'style') throw new Error('no inline styles');
			else el.setAttribute(k, v === true ? '' : String(v));
		}
	}
	append(el, children);
	return el;
}

export function append(el, children) {
	for (const c of children) {
		if (c == null || c === false) continue;
		if (Array.isArray(c)) append(el, c);
		else if (c instanceof Node) el.appendChild(c);
		else el.appendChild(document.createTextNode(String(c)));
	}
	return el;
}

export function clear(el) {
	while (el.firstChild) el.removeChild(el.firstChild);
	return el;
}

export const srOnly = (text) => h('span', {class: 'sr-only'}, text);

// A container for a form's or section's messages.  The container is a live
// region that exists before anything is written to it; each message inside
// carries role=status or role=alert (and only exists while it is shown).
export function messageArea(cls = '') {
	const box = h('div', {class: `messages ${cls}`.trim(), 'aria-live': 'polite'});
	box.show = (kind, content, extra) => {
		clear(box);
		if (content == null || content === '') return box;
		const role = kind === 'error' ? 'alert' : 'status';
		box.appendChild(h('div', {class: `msg msg-${kind}`, role}, content, extra));
		return box;
	};
	box.error = (content, extra) => box.show('error', content, extra);
	box.ok = (content, extra) => box.show('ok', content, extra);
	box.info = (content, extra) => box.show('info', content, extra);
	box.clear = () => clear(box);
	return box;
}

// Polite announcement for screen readers only (route changes, new messages).
export function announce(text) {
	const el = document.getElementById('announcer');
	if (!el) return;
	el.textContent = '';
	setTimeout(() => { el.textContent = text; }, 50);
}

export function loading(text) {
	return h('p', {class: 'page-loading', role: 'status'}, h('span', {class: 'spinner', 'aria-hidden': 'true'}), text);
}

// Error block with a Retry button.
export function errorBlock(text, onRetry) {
	return h('div', {class: 'msg msg-error block-error', role: 'alert'},
		h('p', null, text),
		onRetry ? h('button', {type: 'button', class: 'btn btn-secondary', onclick: onRetry}, 'Try again') : null);
}

// A determinate progress bar (role=progressbar with a label).
export function progressBar(percent, label, cls = '') {
	const p = Math.max(0, Math.min(100, Math.round(percent || 0)));
	const fill = h('span', {class: 'bar-fill'});
	fill.style.width = `${p}%`;
	const bar = h('span', {class: `bar ${cls}`.trim(), role: 'progressbar', 'aria-label': label,
		'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(p), 'aria-valuetext': `${p}%`}, fill);
	bar.set = (v) => {
		const q = Math.max(0, Math.min(100, Math.round(v)));
		fill.style.width = `${q}%`;
		bar.setAttribute('aria-valuenow', String(q));
		bar.setAttribute('aria-valuetext', `${q}%`);
	};
	return bar;
}

// ---- formatting -----------------------------------------------------------

const prefs = {locale: undefined, timeZone: undefined};
export function setFormatPrefs(locale, timeZone) {
	prefs.locale = locale || undefined;
	prefs.timeZone = timeZone || undefined;
	try { new Intl.DateTimeFormat(prefs.locale); } catch { prefs.locale = undefined; }
	try { new Intl.DateTimeFormat(undefined, {timeZone: prefs.timeZone}); } catch { prefs.timeZone = undefined; }
}

// 'YYYY-MM-DD' (a calendar date, no time zone) -> "18 Dec 2026"
export function fmtDate(d) {
	if (!d) return '';
	const [y, m, day] = d.split('-').map(Number);
	const dt = new Date(Date.UTC(y, m - 1, day));
	return new Intl.DateTimeFormat(prefs.locale, {day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC'}).format(dt);
}

export function fmtDateTime(ts) {
	if (!ts) return '';
	return new Intl.DateTimeFormat(prefs.locale, {day: 'numeric', month: 'short', year: 'numeric',
		hour: '2-digit', minute: '2-digit', timeZone: prefs.timeZone}).format(new Date(ts));
}

export function fmtTime(ts) {
	return new Intl.DateTimeFormat(prefs.locale, {hour: '2-digit', minute: '2-digit', timeZone: prefs.timeZone}).format(new Date(ts));
}

// A friendly timestamp: time only for today, else date and time.
export function fmtWhen(ts) {
	return dayKey(ts) === dayKey(Date.now()) ? `Today ${fmtTime(ts)}` : fmtDateTime(ts);
}

// The calendar day of a timestamp in the user's zone, as YYYY-MM-DD.
export function dayKey(ts) {
	return new Intl.DateTimeFormat('en-CA', {timeZone: prefs.timeZone}).format(new Date(ts));
}

// "Today", "Yesterday" or "Mon, 14 Dec 2026" for a day key.
export function fmtDay(key) {
	const today = dayKey(Date.now());
	const yesterday = dayKey(Date.now() - 86400000);
	if (key === today) return 'Today';
	if (key === yesterday) return 'Yesterday';
	const [y, m, d] = key.split('-').map(Number);
	return new Intl.DateTimeFormat(prefs.locale, {weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC'})
		.format(new Date(Date.UTC(y, m - 1, d)));
}

export function timeEl(ts, text) {
	return h('time', {datetime: ts}, text ?? fmtWhen(ts));
}

export function dateEl(d) {
	return h('time', {datetime: d}, fmtDate(d));
}

export function fmtBytes(n) {
	if (n == null) return '';
	if (n < 1024) return `${n} B`;
	const units = ['KB', 'MB', 'GB'];
	let v = n / 1024, i = 0;
	while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
	return `${v >= 10 ? Math.round(v) : Math.round(v * 10) / 10} ${units[i]}`;
}

export function plural(n, one, many) {
	return `${n} ${n === 1 ? one : many}`;
}

// "in 5 minutes" style wait, for lockouts and rate limits
export function fmtWait(seconds) {
	const s = Math.max(1, Math.ceil(seconds));
	if (s < 60) return plural(s, 'second', 'seconds');
	const m = Math.ceil(s / 60);
	if (m < 60) return plural(m, 'minute', 'minutes');
	const hrs = Math.floor(m / 60), rest = m % 60;
	return rest ? `${plural(hrs, 'hour', 'hours')} ${plural(rest, 'minute', 'minutes')}` : plural(hrs, 'hour', 'hours');
}

// Status badge: text plus a tone class.
const TONES = {
	active: 'info', on_hold: 'warn', completed: 'ok', archived: 'muted',
	pending: 'muted', in_progress: 'info', done: 'ok', todo: 'muted',
	scheduled: 'muted', delivered: 'warn', approved: 'ok', changes_requested: 'danger',
};
export const STATUS_TEXT = {
	project: {active: 'Active', on_hold: 'On hold', completed: 'Completed', archived: 'Archived'},
	milestone: {pending: 'Not started', in_progress: 'In progress', done: 'Done'},
	task: {todo: 'To do', in_progress: 'In progress', done: 'Done'},
	deliverable: {scheduled: 'Scheduled', in_progress: 'In progress', delivered: 'Delivered',
		approved: 'Approved', changes_requested: 'Changes requested'},
};
export function badge(kind, status) {
	const text = STATUS_TEXT[kind]?.[status] ?? status;
	return h('span', {class: `badge tone-${TONES[status] || 'muted'}`, dataset: {status}}, text);
}

// Keep a focused element's identity over a re-render: elements that should
// keep focus carry data-focus-key.
let savedSelection = null;
export function focusKey() {
	const a = document.activeElement;
	const key = a && a.dataset ? a.dataset.focusKey || null : null;
	savedSelection = key && typeof a.selectionStart === 'number' ? [key, a.selectionStart, a.selectionEnd] : null;
	return key;
}
export function restoreFocus(root, key) {
	if (!key) return;
	const el = root.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
	if (!el) return;
	el.focus({preventScroll: true});
	if (savedSelection && savedSelection[0] === key && typeof el.setSelectionRange === 'function') {
		try { el.setSelectionRange(savedSelection[1], savedSelection[2]); } catch { /* not a text field */ }
	}
}
