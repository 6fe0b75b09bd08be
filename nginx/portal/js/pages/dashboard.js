// Projects dashboard: a card per project with status, progress, next
// deliverable and unread messages.  Polls with ETags while visible.

import * as api from '../api.js';
import {h, loading, errorBlock, messageArea, progressBar, badge, dateEl, plural, focusKey, restoreFocus} from '../dom.js';
import {takeFlash} from '../app.js';

const POLL_MS = 10000;

function card(p) {
	const headingId = `project-${p.id}`;
	const nd = p.next_deliverable;
	const unread = p.unread_messages || 0;
	return h('li', {class: 'project-card card', dataset: {projectId: p.id}},
		h('article', {'aria-labelledby': headingId},
			h('div', {class: 'card-top'},
				h('h2', {class: 'card-title', id: headingId}, h('a', {href: `/projects/${p.id}`, class: 'card-link', dataset: {focusKey: `p-${p.id}`}}, p.name)),
				badge('project', p.status)),
			p.description ? h('p', {class: 'card-desc'}, p.description) : null,
			h('div', {class: 'progress-row'},
				progressBar(p.progress.percent, `${p.name} progress`),
				h('p', {class: 'progress-text'},
					`${p.progress.percent}% complete`,
					h('span', {class: 'muted'}, ` · ${p.progress.tasks_done} of ${plural(p.progress.tasks_total, 'task', 'tasks')} done`))),
			h('dl', {class: 'card-facts'},
				h('div', null, h('dt', null, 'Next deliverable'),
					h('dd', null, nd
						? [h('span', {class: 'nd-title'}, nd.title), ' ', h('span', {class: 'muted'}, 'due '), dateEl(nd.due_date), ' ', badge('deliverable', nd.status)]
						: h('span', {class: 'muted'}, 'None pending'))),
				p.due_date ? h('div', null, h('dt', null, 'Due'), h('dd', null, dateEl(p.due_date))) : null),
			h('p', {class: 'card-foot'},
				h('a', {href: `/projects/${p.id}/messages`, class: `unread-link${unread ? ' has-unread' : ''}`, dataset: {focusKey: `u-${p.id}`},
					'aria-describedby': headingId},
					unread ? h('span', {class: 'count', 'aria-hidden': 'true'}, String(unread)) : null,
					unread ? `${plural(unread, 'unread message', 'unread messages')}` : 'Messages'))));
}

export function render(ctx) {
	ctx.setTitle('Your projects');
	const msgs = messageArea();
	const flash = takeFlash();
	if (flash) msgs.show(flash.kind, flash.text);
	const body = h('div', {class: 'page-body'}, loading('Loading your projects…'));
	ctx.main.append(h('div', {class: 'page-head'}, h('h1', null, 'Your projects')), msgs, body);

	let etag = null, stop = null, list = null;
	const show = (projects) => {
		if (!projects.length) {
			body.replaceChildren(h('div', {class: 'empty card'},
				h('h2', null, 'No projects yet'),
				h('p', null, 'When your team adds you to a project, it will appear here.')));
			return;
		}
		const key = focusKey();
		list = h('ul', {class: 'project-grid', role: 'list'}, projects.map(card));
		body.replaceChildren(list);
		restoreFocus(list, key);
	};
	const fetchAll = async (first) => {
		// up to 200 projects per page; a client rarely has more
		const r = await api.get('/projects?limit=200', {etag: first ? null : etag, signal: ctx.signal});
		if (r.notModified) return;
		etag = r.etag;
		let data = r.data.data, cursor = r.data.next_cursor;
		while (cursor) {
			const more = await api.get(`/projects?limit=200&cursor=${encodeURIComponent(cursor)}`, {signal: ctx.signal});
			data = data.concat(more.data.data);
			cursor = more.data.next_cursor;
		}
		show(data);
	};
	const start = async () => {
		try {
			await fetchAll(true);
		} catch (err) {
			if (err.name === 'AbortError' || err.status === 401) return;
			body.replaceChildren(errorBlock(`Your projects could not be loaded. ${api.describe(err)}`, () => {
				body.replaceChildren(loading('Loading your projects…'));
				start();
			}));
			return;
		}
		if (!stop && !ctx.signal.aborted) stop = api.poll(() => fetchAll(false), POLL_MS);
	};
	start();
	return () => { if (stop) stop(); };
}
