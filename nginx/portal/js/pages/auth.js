// Sign in, accept invite, forgot password, reset password.

import * as api from '../api.js';
import {h, nextId, messageArea, loading, announce, fmtWait, fmtDateTime, fmtTime} from '../dom.js';
import {checkPassword, serverPasswordMessage} from '../password.js';
import {setFlash, takeFlash, loadMe} from '../app.js';

// ---- shared pieces --------------------------------------------------------

export function field({label, type = 'text', name, autocomplete, value, required, hint, inputmode, maxlength}) {
	const id = nextId('f');
	const hintId = hint ? `${id}-hint` : null;
	const input = h('input', {id, name: name || id, type, autocomplete, value, required, inputmode, maxlength,
		'aria-describedby': hintId, spellcheck: type === 'email' ? 'false' : null, autocapitalize: type === 'email' ? 'none' : null});
	const el = h('div', {class: 'field'},
		h('label', {for: id}, label),
		hint ? h('p', {class: 'hint', id: hintId}, hint) : null,
		input);
	return {el, input};
}

function invalid(input, on) {
	if (on) input.setAttribute('aria-invalid', 'true');
	else input.removeAttribute('aria-invalid');
}

// A new-password input with live feedback on the server's rules.
export function passwordField({label = 'New password', emailHint = null, emailRule = true, autocomplete = 'new-password'} = {}) {
	const id = nextId('pw');
	const rulesId = `${id}-rules`, introId = `${id}-intro`;
	const input = h('input', {id, type: 'password', autocomplete, 'aria-describedby': `${introId} ${rulesId}`,
		maxlength: '1024', spellcheck: 'false', autocapitalize: 'none'});
	const toggle = h('button', {type: 'button', class: 'btn btn-inline btn-show', 'aria-pressed': 'false', 'aria-controls': id},
		'Show', h('span', {class: 'show-extra'}, ' password'));
	toggle.addEventListener('click', () => {
		const show = input.type === 'password';
		input.type = show ? 'text' : 'password';
		toggle.setAttribute('aria-pressed', String(show));
	});
	const items = {};
	const rules = checkPassword('', emailHint).filter((r) => emailRule || r.id !== 'email');
	const list = h('ul', {class: 'rules', id: rulesId}, rules.map((r) => {
		const state = h('span', {class: 'sr-only'}, ': not met yet');
		const detail = h('span', {class: 'rule-detail'});
		const li = h('li', {class: 'rule', dataset: {rule: r.id, ok: 'false'}},
			h('span', {class: 'rule-icon', 'aria-hidden': 'true'}), h('span', null, r.text), detail, state);
		items[r.id] = {li, state, detail};
		return li;
	}));
	let lastSummary = '', timer = null;
	const update = () => {
		const res = checkPassword(input.value, emailHint).filter((r) => emailRule || r.id !== 'email');
		for (const r of res) {
			const it = items[r.id];
			it.li.dataset.ok = String(r.ok);
			it.state.textContent = r.ok ? ': met' : ': not met yet';
			if (r.id === 'length') it.detail.textContent = r.detail ? ` (${r.detail})` : '';
		}
		clearTimeout(timer);
		timer = setTimeout(() => {
			const missing = res.filter((r) => !r.ok);
			const s = !input.value ? '' : missing.length
				? `Password still needs: ${missing.map((r) => r.text.toLowerCase()).join('; ')}.`
				: 'All password rules are met.';
			if (s && s !== lastSummary) announce(s);
			lastSummary = s;
		}, 900);
		return res;
	};
	input.addEventListener('input', () => {
		update();
		invalid(input, false);
	});
	const el = h('div', {class: 'field'},
		h('label', {for: id}, label),
		h('div', {class: 'pw-wrap'}, input, toggle),
		h('p', {class: 'hint', id: introId}, 'Your password must be:'),
		list);
	return {
		el, input,
		problems: () => update().filter((r) => !r.ok),
		setInvalid: (on) => invalid(input, on),
	};
}

function busy(form, on) {
	for (const b of form.querySelectorAll('button[type=submit]')) b.disabled = on;
	form.setAttribute('aria-busy', on ? 'true' : 'false');
}

function safeNext(next) {
	return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/signin') ? next : '/';
}

function tokenFromHash() {
	const p = new URLSearchParams(location.hash.replace(/^#/, ''));
	return p.get('token') || '';
}

function lockedMessage(err) {
	const secs = err.retryAfter;
	if (!secs) return 'Too many failed sign-in attempts. This account is locked for a while; please try again later.';
	const until = new Date(Date.now() + secs * 1000).toISOString();
	return `Too many failed sign-in attempts. For your security this account is locked for ${fmtWait(secs)}. ` +
		(secs < 120 ? 'Try again when that time has passed.' : `Try again after ${fmtTime(until)}.`);
}

// ---- sign in ----------------------------------------------------------------

export function signin(ctx) {
	const next = safeNext(ctx.query.get('next'));
	if (api.signedIn()) {
		ctx.navigate(next, {replace: true});
		return;
	}
	ctx.setTitle('Sign in');
	const b = ctx.branding;
	const msgs = messageArea();
	const flash = takeFlash();
	if (flash) msgs.show(flash.kind, flash.text);
	const email = field({label: 'Email', type: 'email', name: 'email', autocomplete: 'username', required: true});
	const password = field({label: 'Password', type: 'password', name: 'password', autocomplete: 'current-password', required: true});
	const form = h('form', {class: 'card form', novalidate: true},
		msgs, email.el, password.el,
		h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'btn btn-primary btn-wide'}, 'Sign in')),
		h('p', {class: 'form-foot'}, h('a', {href: '/forgot'}, 'Forgot your password?')));
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		invalid(email.input, false);
		invalid(password.input, false);
		const em = email.input.value.trim();
		if (!em || !/^[^\s@]+@[^\s@]+$/.test(em)) {
			invalid(email.input, true);
			msgs.error(em ? 'Enter a valid email address.' : 'Enter your email address.');
			email.input.focus();
			return;
		}
		if (!password.input.value) {
			invalid(password.input, true);
			msgs.error('Enter your password.');
			password.input.focus();
			return;
		}
		busy(form, true);
		msgs.info('Signing in…');
		try {
			await api.login(em, password.input.value);
			try { await loadMe(); } catch { /* formats fall back */ }
			ctx.navigate(next, {replace: true});
		} catch (err) {
			busy(form, false);
			password.input.value = '';
			if (err.code === 'invalid_credentials') {
				msgs.error('Email or password is wrong.');
				invalid(password.input, true);
				password.input.focus();
			} else if (err.code === 'account_locked') {
				msgs.error(lockedMessage(err));
			} else if (err.code === 'account_disabled') {
				msgs.error(`This account is disabled. Please contact ${b.support_email || b.display_name} for help.`);
			} else if (err.status === 422) {
				msgs.error('Enter a valid email address and your password.');
				email.input.focus();
			} else {
				msgs.error(api.describe(err));
			}
		}
	});
	ctx.main.append(
		h('div', {class: 'auth-head'},
			h('h1', null, 'Sign in'),
			h('p', {class: 'lead'}, `Welcome to the ${b.display_name} client portal.`)),
		form);
}

// ---- accept invite ------------------------------------------------------------

export function invite(ctx) {
	ctx.setTitle('Accept invitation');
	const token = tokenFromHash();
	const b = ctx.branding;
	const body = h('div', {class: 'auth-body'});
	ctx.main.append(h('div', {class: 'auth-head'}, h('h1', null, 'Accept your invitation')), body);
	const invalidLink = (text) => {
		body.replaceChildren(h('div', {class: 'msg msg-error', role: 'alert'},
			h('p', null, text),
			h('p', null, `Ask ${b.display_name} to send you a new invitation.`)),
		h('p', null, 'Already have an account? ', h('a', {href: '/signin'}, 'Sign in')));
	};
	if (!token) {
		invalidLink('This invitation link is incomplete. Open the link from your invitation email again.');
		return;
	}
	body.append(loading('Checking your invitation…'));
	let stopped = false;
	const load = async () => {
		let info;
		try {
			info = (await api.publicPost('/auth/invite/inspect', {token})).data;
		} catch (err) {
			if (stopped) return;
			if (err.code === 'invite_invalid' || err.status === 404 || err.status === 422)
				invalidLink('This invitation link is invalid, has expired or has already been used.');
			else
				body.replaceChildren(h('div', {class: 'msg msg-error', role: 'alert'}, h('p', null, api.describe(err)),
					h('button', {type: 'button', class: 'btn btn-secondary', onclick: () => {
						body.replaceChildren(loading('Checking your invitation…'));
						load();
					}}, 'Try again')));
			return;
		}
		if (stopped) return;
		const msgs = messageArea();
		const name = field({label: 'Your name', name: 'name', autocomplete: 'name', value: info.name || '', maxlength: '200'});
		const pw = passwordField({label: 'Password', emailHint: info.email_hint});
		const form = h('form', {class: 'card form', novalidate: true},
			msgs, name.el, pw.el,
			h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'btn btn-primary btn-wide'}, 'Accept invitation')));
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			const problems = pw.problems();
			if (!name.input.value.trim()) {
				invalid(name.input, true);
				msgs.error('Enter your name.');
				name.input.focus();
				return;
			}
			invalid(name.input, false);
			if (problems.length) {
				pw.setInvalid(true);
				msgs.error(`Your password must be: ${problems.map((p) => p.text.toLowerCase()).join('; ')}.`);
				pw.input.focus();
				return;
			}
			busy(form, true);
			msgs.info('Setting up your account…');
			const payload = {token, password: pw.input.value};
			if (name.input.value !== info.name) payload.name = name.input.value;
			try {
				const {data} = await api.publicPost('/auth/invite/accept', payload);
				api.setSession(data);
				try { await loadMe(); } catch { /* formats fall back */ }
				setFlash('ok', `Welcome, ${data.user?.name || info.name}! Your account is ready.`);
				ctx.navigate('/', {replace: true});
			} catch (err) {
				busy(form, false);
				if (err.status === 422) {
					const fe = err.fieldError('password');
					const ne = err.fieldError('name');
					if (fe) {
						pw.setInvalid(true);
						msgs.error(serverPasswordMessage(fe));
						pw.input.focus();
					} else if (ne) {
						invalid(name.input, true);
						msgs.error(`Your name ${ne.message}.`);
						name.input.focus();
					} else {
						msgs.error(api.describe(err));
					}
				} else if (err.code === 'invite_invalid' || err.status === 404) {
					invalidLink('This invitation link is invalid, has expired or has already been used.');
				} else {
					msgs.error(api.describe(err));
				}
			}
		});
		body.replaceChildren(
			h('p', {class: 'lead'}, `${info.tenant_display_name} has invited you to its client portal.`),
			h('dl', {class: 'facts'},
				h('div', null, h('dt', null, 'Email'), h('dd', null, info.email_hint)),
				h('div', null, h('dt', null, 'Invitation expires'), h('dd', null, h('time', {datetime: info.expires_at}, fmtDateTime(info.expires_at))))),
			h('p', null, 'Choose a password to finish setting up your account.'),
			form);
	};
	load();
	return () => { stopped = true; };
}

// ---- forgot password ----------------------------------------------------------

export function forgot(ctx) {
	ctx.setTitle('Forgot password');
	const msgs = messageArea();
	const email = field({label: 'Email', type: 'email', name: 'email', autocomplete: 'username', required: true});
	const form = h('form', {class: 'card form', novalidate: true},
		msgs, email.el,
		h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'btn btn-primary btn-wide'}, 'Send reset link')),
		h('p', {class: 'form-foot'}, h('a', {href: '/signin'}, 'Back to sign in')));
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		const em = email.input.value.trim();
		if (!em || !/^[^\s@]+@[^\s@]+$/.test(em)) {
			invalid(email.input, true);
			msgs.error(em ? 'Enter a valid email address.' : 'Enter your email address.');
			email.input.focus();
			return;
		}
		invalid(email.input, false);
		busy(form, true);
		msgs.info('Sending…');
		try {
			await api.publicPost('/auth/password/forgot', {email: em});
			msgs.ok(`If an account exists for ${em}, we have sent it a link to choose a new password. Check your inbox.`);
		} catch (err) {
			msgs.error(err.status === 422 ? 'Enter a valid email address.' : api.describe(err));
		} finally {
			busy(form, false);
		}
	});
	ctx.main.append(
		h('div', {class: 'auth-head'},
			h('h1', null, 'Reset your password'),
			h('p', {class: 'lead'}, 'Enter the email address of your account and we will send you a link to choose a new password.')),
		form);
}

// ---- reset password -------------------------------------------------------------

export function reset(ctx) {
	ctx.setTitle('Choose a new password');
	const token = tokenFromHash();
	const body = h('div', {class: 'auth-body'});
	ctx.main.append(h('div', {class: 'auth-head'}, h('h1', null, 'Choose a new password')), body);
	const bad = (text) => body.replaceChildren(h('div', {class: 'msg msg-error', role: 'alert'},
		h('p', null, text), h('p', null, h('a', {href: '/forgot'}, 'Request a new link'))));
	if (!token) {
		bad('This reset link is incomplete. Open the link from your email again.');
		return;
	}
	const msgs = messageArea();
	const pw = passwordField({label: 'New password', emailRule: false});
	const form = h('form', {class: 'card form', novalidate: true},
		msgs, pw.el,
		h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'btn btn-primary btn-wide'}, 'Save new password')));
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		const problems = pw.problems();
		if (problems.length) {
			pw.setInvalid(true);
			msgs.error(`Your password must be: ${problems.map((p) => p.text.toLowerCase()).join('; ')}.`);
			pw.input.focus();
			return;
		}
		busy(form, true);
		msgs.info('Saving…');
		try {
			await api.publicPost('/auth/password/reset', {token, password: pw.input.value});
			history.replaceState(null, '', '/reset');
			const done = h('div', {class: 'msg msg-ok', role: 'status', tabindex: '-1'},
				h('p', null, 'Your password has been changed. Every session was signed out.'),
				h('p', null, h('a', {href: '/signin', class: 'btn btn-primary'}, 'Sign in')));
			body.replaceChildren(done);
			done.focus();
		} catch (err) {
			busy(form, false);
			if (err.status === 422 && err.fieldError('password')) {
				pw.setInvalid(true);
				msgs.error(serverPasswordMessage(err.fieldError('password')));
				pw.input.focus();
			} else if (err.code === 'token_invalid' || err.status === 404) {
				bad('This reset link is invalid, has expired or has already been used.');
			} else {
				msgs.error(api.describe(err));
			}
		}
	});
	body.append(h('p', {class: 'lead'}, 'Choose a new password for your account.'), form);
}
