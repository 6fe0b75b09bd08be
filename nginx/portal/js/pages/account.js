// Account: profile, password change, active sessions, notification
// preferences (channels and the topics matrix).

import * as api from '../api.js';
import {h, nextId, loading, errorBlock, messageArea, fmtDateTime, setFormatPrefs} from '../dom.js';
import {field, passwordField} from './auth.js';
import {serverPasswordMessage} from '../password.js';

const LOCALES = ['en', 'en-GB', 'de', 'fr', 'es', 'it', 'nl', 'pt', 'pt-BR', 'sv', 'da', 'nb', 'fi', 'pl', 'cs', 'tr', 'ja', 'zh', 'ko'];
const TOPICS = [
	{key: 'messages', label: 'Messages', hint: 'New messages in your projects'},
	{key: 'deliverables', label: 'Deliverables', hint: 'Deliverables ready for your review'},
	{key: 'milestones', label: 'Milestones', hint: 'Completed milestones'},
];
const CHANNELS = [{key: 'email', label: 'Email', by: 'by email'}, {key: 'whatsapp', label: 'WhatsApp', by: 'by WhatsApp'}];

function languageName(code) {
	try {
		const native = new Intl.DisplayNames([code], {type: 'language'}).of(code);
		return native && native !== code ? `${native} (${code})` : code;
	} catch {
		return code;
	}
}

function select({label, options, value, hint}) {
	const id = nextId('sel');
	const hintId = hint ? `${id}-hint` : null;
	const el = h('select', {id, 'aria-describedby': hintId},
		options.map(([v, text]) => h('option', {value: v, selected: v === value}, text)));
	el.value = value;
	return {el: h('div', {class: 'field'}, h('label', {for: id}, label), hint ? h('p', {class: 'hint', id: hintId}, hint) : null, el), input: el};
}

function busy(form, on) {
	for (const b of form.querySelectorAll('button[type=submit]')) b.disabled = on;
	form.setAttribute('aria-busy', on ? 'true' : 'false');
}

// "Chrome on Windows" from a User-Agent string, good enough to tell sessions apart.
function device(ua) {
	if (!ua) return 'Unknown device';
	const browser = /Edg\//.test(ua) ? 'Edge' : /OPR\//.test(ua) ? 'Opera' : /Firefox\//.test(ua) ? 'Firefox'
		: /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : /curl\//.test(ua) ? 'curl'
			: ua.split(/[\s/]/)[0] || 'Browser';
	const os = /Windows/.test(ua) ? 'Windows' : /iPhone|iPad/.test(ua) ? 'iOS' : /Android/.test(ua) ? 'Android'
		: /Mac OS X|Macintosh/.test(ua) ? 'macOS' : /CrOS/.test(ua) ? 'ChromeOS' : /Linux/.test(ua) ? 'Linux' : '';
	return os ? `${browser} on ${os}` : browser;
}

export function render(ctx) {
	ctx.setTitle('Your account');
	const body = h('div', {class: 'page-body account'}, loading('Loading your account…'));
	ctx.main.append(h('div', {class: 'page-head'}, h('h1', null, 'Your account')), body);
	let me = null;

	// ---- profile ----------------------------------------------------------------

	function profileSection() {
		const msgs = messageArea();
		const name = field({label: 'Name', name: 'name', autocomplete: 'name', value: me.name, maxlength: '200'});
		const phone = field({label: 'Phone', type: 'tel', name: 'phone', autocomplete: 'tel', value: me.phone || '',
			hint: 'International format, for example +15551234567. Leave empty to remove it.', inputmode: 'tel'});
		const locales = LOCALES.includes(me.locale) ? LOCALES : [me.locale, ...LOCALES];
		const locale = select({label: 'Language', value: me.locale, options: locales.map((l) => [l, languageName(l)]),
			hint: 'Used for dates and numbers.'});
		let zones = [];
		try { zones = Intl.supportedValuesOf('timeZone'); } catch { zones = []; }
		zones = [...new Set(['UTC', me.time_zone, ...zones])].sort((a, b) => (a === 'UTC' ? -1 : b === 'UTC' ? 1 : a.localeCompare(b)));
		const tz = select({label: 'Time zone', value: me.time_zone, options: zones.map((z) => [z, z.replace(/_/g, ' ')])});
		const form = h('form', {class: 'form', novalidate: true},
			msgs,
			h('dl', {class: 'facts'}, h('div', null, h('dt', null, 'Email'), h('dd', null, me.email)),
				me.company ? h('div', null, h('dt', null, 'Company'), h('dd', null, me.company)) : null),
			name.el, phone.el, locale.el, tz.el,
			h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'btn btn-primary'}, 'Save profile')));
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			for (const i of [name.input, phone.input, locale.input, tz.input]) i.removeAttribute('aria-invalid');
			const patch = {};
			if (!name.input.value.trim()) {
				name.input.setAttribute('aria-invalid', 'true');
				msgs.error('Enter your name.');
				name.input.focus();
				return;
			}
			const ph = phone.input.value.replace(/[\s()-]/g, '');
			if (ph && !/^\+[1-9]\d{6,14}$/.test(ph)) {
				phone.input.setAttribute('aria-invalid', 'true');
				msgs.error('Enter the phone number in international format, for example +15551234567.');
				phone.input.focus();
				return;
			}
			if (name.input.value !== me.name) patch.name = name.input.value;
			if ((ph || null) !== (me.phone || null)) patch.phone = ph || null;
			if (locale.input.value !== me.locale) patch.locale = locale.input.value;
			if (tz.input.value !== me.time_zone) patch.time_zone = tz.input.value;
			if (!Object.keys(patch).length) {
				msgs.ok('Nothing to save: your profile is up to date.');
				return;
			}
			busy(form, true);
			msgs.info('Saving…');
			try {
				const r = await api.patch('/me', patch);
				me = r.data;
				phone.input.value = me.phone || '';
				setFormatPrefs(me.locale, me.time_zone);
				api.updateUser({name: me.name});
				msgs.ok('Your profile has been saved.');
				renderNotify(); // the WhatsApp hint depends on the phone
			} catch (err) {
				const fields = {name: name.input, phone: phone.input, locale: locale.input, time_zone: tz.input};
				for (const fe of err.errors) fields[fe.field]?.setAttribute('aria-invalid', 'true');
				msgs.error(`Your profile could not be saved. ${api.describe(err)}`);
				const first = err.errors.find((fe) => fields[fe.field]);
				if (first) fields[first.field].focus();
			} finally {
				busy(form, false);
			}
		});
		return h('section', {class: 'card section', 'aria-labelledby': 'sec-profile'}, h('h2', {id: 'sec-profile'}, 'Profile'), form);
	}

	// ---- password ---------------------------------------------------------------------

	function passwordSection() {
		const msgs = messageArea();
		const current = field({label: 'Current password', type: 'password', name: 'current-password', autocomplete: 'current-password'});
		const pw = passwordField({label: 'New password', emailHint: me.email});
		const form = h('form', {class: 'form', novalidate: true},
			h('input', {type: 'text', name: 'username', autocomplete: 'username', value: me.email, hidden: true, readOnly: true}),
			msgs, current.el, pw.el,
			h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'btn btn-primary'}, 'Change password')));
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			current.input.removeAttribute('aria-invalid');
			if (!current.input.value) {
				current.input.setAttribute('aria-invalid', 'true');
				msgs.error('Enter your current password.');
				current.input.focus();
				return;
			}
			const problems = pw.problems();
			if (problems.length) {
				pw.setInvalid(true);
				msgs.error(`Your new password must be: ${problems.map((p) => p.text.toLowerCase()).join('; ')}.`);
				pw.input.focus();
				return;
			}
			busy(form, true);
			msgs.info('Changing your password…');
			try {
				await api.post('/me/password', {current_password: current.input.value, new_password: pw.input.value});
				current.input.value = '';
				pw.input.value = '';
				pw.input.dispatchEvent(new Event('input'));
				msgs.ok('Your password has been changed. Your other sessions have been signed out.');
				loadSessions();
			} catch (err) {
				if (err.code === 'invalid_credentials' || err.status === 403) {
					current.input.setAttribute('aria-invalid', 'true');
					msgs.error('Your current password is wrong.');
					current.input.value = '';
					current.input.focus();
				} else if (err.status === 422 && err.fieldError('new_password')) {
					pw.setInvalid(true);
					msgs.error(serverPasswordMessage(err.fieldError('new_password')));
					pw.input.focus();
				} else {
					msgs.error(`Your password could not be changed. ${api.describe(err)}`);
				}
			} finally {
				busy(form, false);
			}
		});
		return h('section', {class: 'card section', 'aria-labelledby': 'sec-password'}, h('h2', {id: 'sec-password'}, 'Change password'), form);
	}

	// ---- sessions -----------------------------------------------------------------------

	const sessionsMsgs = messageArea();
	const sessionsBox = h('div', {class: 'sessions'});
	function sessionsSection() {
		return h('section', {class: 'card section', 'aria-labelledby': 'sec-sessions'},
			h('h2', {id: 'sec-sessions'}, 'Active sessions'),
			h('p', {class: 'hint'}, 'Devices and browsers where you are signed in. Sign out any you do not recognise.'),
			sessionsMsgs, sessionsBox);
	}
	async function loadSessions() {
		if (!sessionsBox.firstChild) sessionsBox.append(loading('Loading sessions…'));
		let list;
		try {
			list = await api.getAll('/auth/sessions', {signal: ctx.signal});
		} catch (err) {
			if (err.name === 'AbortError' || err.status === 401) return;
			sessionsBox.replaceChildren(errorBlock(`Your sessions could not be loaded. ${api.describe(err)}`, loadSessions));
			return;
		}
		list.sort((a, b) => (b.current - a.current) || String(b.last_used_at).localeCompare(String(a.last_used_at)));
		sessionsBox.replaceChildren(h('ul', {class: 'session-list', role: 'list'}, list.map((s) => {
			const dev = device(s.user_agent);
			const btn = h('button', {type: 'button', class: 'btn btn-secondary'},
				'Sign out', h('span', {class: 'sr-only'}, s.current ? ' this device' : ` ${dev}, last active ${fmtDateTime(s.last_used_at)}`));
			btn.addEventListener('click', async () => {
				if (s.current) {
					await api.logout();
					return;
				}
				btn.disabled = true;
				try {
					await api.del(`/auth/sessions/${s.id}`);
					li.remove();
					sessionsMsgs.ok(`Signed out ${dev}.`);
					const first = sessionsBox.querySelector('button');
					if (first) first.focus();
				} catch (err) {
					btn.disabled = false;
					if (err.status === 404) {
						li.remove();
						sessionsMsgs.ok(`${dev} was already signed out.`);
					} else {
						sessionsMsgs.error(`${dev} could not be signed out. ${api.describe(err)}`);
					}
				}
			});
			const li = h('li', {class: `session${s.current ? ' current' : ''}`, dataset: {sessionId: s.id}},
				h('div', {class: 'session-info'},
					h('p', {class: 'session-device'}, h('strong', null, dev), s.current ? h('span', {class: 'badge tone-ok'}, 'This device') : null),
					h('p', {class: 'muted small'},
						`Signed in ${fmtDateTime(s.created_at)} · Last active ${fmtDateTime(s.last_used_at)}${s.ip ? ` · IP ${s.ip}` : ''}`)),
				btn);
			return li;
		})));
	}

	// ---- notifications ------------------------------------------------------------------------

	const notifyBox = h('div');
	function renderNotify() {
		const n = me.notify || {};
		const topics = n.topics || {};
		const state = {
			email: n.email !== false, whatsapp: !!n.whatsapp,
			topics: Object.fromEntries(TOPICS.map((t) => [t.key, {
				email: topics[t.key]?.email !== false, whatsapp: topics[t.key]?.whatsapp !== false}])),
		};
		const msgs = messageArea();
		const cells = {};
		const channelBox = (c) => {
			const id = nextId('ch');
			const hintId = `${id}-hint`;
			const input = h('input', {type: 'checkbox', id, checked: state[c.key], 'aria-describedby': hintId});
			input.addEventListener('change', () => {
				state[c.key] = input.checked;
				sync();
			});
			return {input, el: h('div', {class: 'check'}, input,
				h('label', {for: id}, `${c.label} notifications`),
				h('p', {class: 'hint', id: hintId}, c.key === 'email'
					? `Sent to ${me.email}.`
					: me.phone ? `Sent to ${me.phone}, when this portal offers WhatsApp.` : 'Add a phone number to your profile to receive WhatsApp messages.'))};
		};
		const chans = Object.fromEntries(CHANNELS.map((c) => [c.key, channelBox(c)]));
		const table = h('table', {class: 'matrix'},
			h('caption', null, 'Notify me about'),
			h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'Topic'), CHANNELS.map((c) => h('th', {scope: 'col'}, c.label)))),
			h('tbody', null, TOPICS.map((t) => h('tr', null,
				h('th', {scope: 'row'}, h('span', {class: 'topic-name'}, t.label), h('span', {class: 'hint topic-hint'}, t.hint)),
				CHANNELS.map((c) => {
					const id = nextId('tp');
					const input = h('input', {type: 'checkbox', id, checked: state.topics[t.key][c.key]});
					input.addEventListener('change', () => { state.topics[t.key][c.key] = input.checked; });
					cells[`${t.key}.${c.key}`] = input;
					return h('td', null, h('label', {for: id, class: 'sr-only'}, `${t.label} ${c.by}`), input);
				})))));
		const sync = () => {
			for (const t of TOPICS) for (const c of CHANNELS) cells[`${t.key}.${c.key}`].disabled = !state[c.key];
		};
		sync();
		const form = h('form', {class: 'form', novalidate: true},
			msgs,
			h('fieldset', {class: 'channels'}, h('legend', null, 'Channels'), chans.email.el, chans.whatsapp.el),
			h('div', {class: 'table-wrap'}, table),
			h('p', {class: 'hint'}, 'A topic is sent on a channel only when that channel is on.'),
			h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'btn btn-primary'}, 'Save notification preferences')));
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			busy(form, true);
			msgs.info('Saving…');
			try {
				const r = await api.patch('/me', {notify: {email: state.email, whatsapp: state.whatsapp, topics: state.topics}});
				me = r.data;
				msgs.ok('Your notification preferences have been saved.');
			} catch (err) {
				msgs.error(`Your preferences could not be saved. ${api.describe(err)}`);
			} finally {
				busy(form, false);
			}
		});
		notifyBox.replaceChildren(form);
	}
	function notifySection() {
		renderNotify();
		return h('section', {class: 'card section', 'aria-labelledby': 'sec-notify'},
			h('h2', {id: 'sec-notify'}, 'Notifications'),
			h('p', {class: 'hint'}, 'Choose how we tell you about activity in your projects.'),
			notifyBox);
	}

	// ---- start ----------------------------------------------------------------------------------

	async function start() {
		try {
			me = (await api.get('/me', {signal: ctx.signal})).data;
		} catch (err) {
			if (err.name === 'AbortError' || err.status === 401) return;
			body.replaceChildren(errorBlock(`Your account could not be loaded. ${api.describe(err)}`, () => {
				body.replaceChildren(loading('Loading your account…'));
				start();
			}));
			return;
		}
		body.replaceChildren(profileSection(), passwordSection(), sessionsSection(), notifySection());
		loadSessions();
	}
	start();
}
