// /unsubscribe?token=...: the page behind the "Unsubscribe" link of an
// activity email.  It shows what the link turns off and asks first (mail
// scanners open links; only the List-Unsubscribe one-click POST acts at
// once).  No sign-in needed: the token names one topic of one recipient.

import * as api from '../api.js';
import {h, messageArea, loading} from '../dom.js';

const TOPIC_TEXT = {
	messages: 'new messages',
	deliverables: 'deliverables',
	milestones: 'completed milestones',
};

async function call(method, token) {
	const res = await fetch(`${api.BASE}/unsubscribe?token=${encodeURIComponent(token)}`, {
		method,
		credentials: 'omit',
		cache: 'no-store',
		headers: method === 'POST' ? {'Content-Type': 'application/x-www-form-urlencoded'} : {},
		body: method === 'POST' ? 'List-Unsubscribe=One-Click' : undefined,
	});
	const data = await res.json().catch(() => null);
	if (!res.ok) throw new api.ApiError(res.status, data);
	return data;
}

export async function render(ctx) {
	ctx.setTitle('Unsubscribe');
	const token = new URLSearchParams(location.search).get('token') || '';
	// the token stays out of the address bar (and of any later Referer)
	history.replaceState(null, '', '/unsubscribe');
	const msgs = messageArea();
	const body = h('div', {class: 'card form'}, msgs, loading('Checking the link…'));
	ctx.main.append(h('div', {class: 'auth-head'}, h('h1', null, 'Email notifications')), body);
	let state;
	try {
		if (!token) throw new api.ApiError(404, {code: 'token_invalid'});
		state = await call('GET', token);
	} catch (err) {
		body.replaceChildren(msgs);
		msgs.error(err.status === 404
			? 'This unsubscribe link is invalid or has expired. You can change your notifications on your account page.'
			: api.describe(err));
		body.append(h('p', {class: 'form-foot'}, h('a', {href: '/account'}, 'Go to your account')));
		return;
	}
	const what = TOPIC_TEXT[state.topic] || state.topic;
	body.replaceChildren(msgs);
	if (state.unsubscribed) {
		msgs.ok(`You no longer get emails about ${what}.`);
		body.append(h('p', {class: 'form-foot'}, h('a', {href: '/account'}, 'Change your notifications')));
		return;
	}
	const question = h('p', null, `You get emails about ${what} in this portal. Stop them?`);
	const button = h('button', {type: 'button', class: 'btn btn-primary btn-wide'}, `Stop emails about ${what}`);
	button.addEventListener('click', async () => {
		button.disabled = true;
		msgs.info('Saving…');
		try {
			await call('POST', token);
			button.remove();
			question.remove();
			msgs.ok(`Done. You no longer get emails about ${what}.`);
		} catch (err) {
			button.disabled = false;
			msgs.error(err.status === 404 ? 'This unsubscribe link is invalid or has expired.' : api.describe(err));
		}
	});
	body.append(
		question,
		h('div', {class: 'actions'}, button),
		h('p', {class: 'form-foot'}, h('a', {href: '/account'}, 'Change all your notifications')));
}
