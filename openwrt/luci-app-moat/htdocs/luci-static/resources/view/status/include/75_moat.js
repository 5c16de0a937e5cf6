'use strict';
'require baseclass';
'require moat.common as common';

/* Status → Overview: one line per protected device. */

return baseclass.extend({
	title: _('moat'),

	load: function() {
		return L.resolveDefault(common.callStatus(), {});
	},

	render: function(st) {
		if (!st || !st.devices)
			return E('p', {}, _('moat is not running'));
		var rows = st.devices.filter(function(d) { return d.mark != 0; }).map(function(d) {
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td left', 'width': '33%' }, d.name),
				E('td', { 'class': 'td left' }, d.state + (d.shaped ? ', ' + _('shaped') : ''))
			]);
		});
		if (!rows.length)
			rows.push(E('tr', { 'class': 'tr' }, E('td', { 'class': 'td left' }, _('No protected devices'))));
		return E('div', {}, [
			E('p', {}, _('State') + ': ' + (st.running ? st.state : (st.state || _('not running')))),
			E('table', { 'class': 'table', 'id': 'moat-overview' }, rows)
		]);
	}
});
