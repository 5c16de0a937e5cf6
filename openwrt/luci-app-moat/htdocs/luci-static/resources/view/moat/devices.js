'use strict';
'require view';
'require form';
'require uci';
'require ui';
'require moat.common as common';

/* Devices: the LAN clients the router knows, with their protection; "Protect" opens the device
 * form prefilled with the client's name and MAC. Changes go through LuCI's save/apply (with its
 * rollback); moat's procd reload trigger reloads the daemon. */

function routeLabel(route) {
	if (route == 'direct') return _('Direct (not protected)');
	if (route == 'block') return _('Blocked (LAN only)');
	return _('Tunnel: %s').format(route);
}

return view.extend({
	load: function() {
		return Promise.all([
			L.resolveDefault(common.callDevices(), {}),
			uci.load('moat')
		]);
	},

	render: function(data) {
		var info = data[0] || {}, self = this;
		var tunnels = uci.sections('moat', 'tunnel'), shapers = uci.sections('moat', 'shaper');
		var m, s, o;

		m = new form.Map('moat', _('moat: devices'),
			_('Pick the devices moat protects: each one is routed directly, blocked, or sent through a tunnel, optionally with traffic shaping.'));

		s = m.section(form.GridSection, 'device', _('Configured devices'));
		s.anonymous = true;
		s.addremove = true;
		s.nodescriptions = true;
		s.modaltitle = _('Device');

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.editable = true;

		o = s.option(form.Value, 'name', _('Name'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			if (!value || !value.length) return _('A name is required');
			if (value.length > 64) return _('At most 64 characters');
			if (/[\x00-\x1f\x7f]/.test(value)) return _('No control characters');
			return true;
		};

		o = s.option(form.DynamicList, 'mac', _('MAC addresses'));
		o.datatype = 'macaddr';
		o.rmempty = false;

		o = s.option(form.ListValue, 'route', _('Route'));
		o.value('direct', _('Direct (not protected)'));
		o.value('block', _('Blocked (LAN only)'));
		tunnels.forEach(function(t) {
			o.value(t['.name'], _('Tunnel: %s').format(t['.name']) + ' (' + (t.type || '?') + ')');
		});
		o.default = tunnels.length ? tunnels[0]['.name'] : 'block';

		o = s.option(form.ListValue, 'shaper', _('Shaper'));
		o.value('', _('None'));
		shapers.forEach(function(sh) { o.value(sh['.name'], sh['.name'] + ' (' + (sh.mode || '?') + ')'); });
		o.optional = true;
		o.validate = function(section_id, value) {
			if (!value) return true;
			var route = this.section.formvalue(section_id, 'route');
			var t = tunnels.filter(function(x) { return x['.name'] == route; })[0];
			if (!t || t.type != 'wireguard')
				return _('A shaper needs a WireGuard tunnel route');
			return true;
		};

		this.map = m;
		this.grid = s;

		return m.render().then(function(mapEl) {
			return E('div', {}, [ self.renderDiscovered(info), mapEl ]);
		});
	},

	renderDiscovered: function(info) {
		var self = this;
		var rows = (info.devices || []).map(function(c) {
			var p = c.protection;
			var state = p ? (p.enabled ? routeLabel(p.route) : _('Disabled')) + (p.shaper ? ', ' + _('shaped (%s)').format(p.shaper) : '')
			              : _('Not protected');
			return E('tr', { 'class': 'tr', 'data-mac': c.mac }, [
				E('td', { 'class': 'td' }, c.hostname || '-'),
				E('td', { 'class': 'td' }, c.mac),
				E('td', { 'class': 'td' }, (c.addresses || []).join(', ')),
				E('td', { 'class': 'td' }, c.last_seen ? new Date(c.last_seen * 1000).toLocaleString() : '-'),
				E('td', { 'class': 'td' }, state),
				E('td', { 'class': 'td' }, p ? '' : E('button', {
					'class': 'cbi-button cbi-button-add moat-protect',
					'click': ui.createHandlerFn(self, 'handleProtect', c)
				}, _('Protect')))
			]);
		});
		if (!rows.length)
			rows.push(E('tr', { 'class': 'tr placeholder' }, E('td', { 'class': 'td' }, _('No clients found (no DHCP leases, no neighbours).'))));
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, _('Discovered clients')),
			E('table', { 'class': 'table', 'id': 'moat-discovered' }, [
				E('tr', { 'class': 'tr table-titles' }, [
					E('th', { 'class': 'th' }, _('Hostname')),
					E('th', { 'class': 'th' }, _('MAC')),
					E('th', { 'class': 'th' }, _('Addresses')),
					E('th', { 'class': 'th' }, _('Last seen')),
					E('th', { 'class': 'th' }, _('Protection')),
					E('th', { 'class': 'th' }, '')
				])
			].concat(rows)),
			(info.notes || []).length ? E('p', { 'class': 'cbi-section-descr' }, info.notes.join('; ')) : ''
		]);
	},

	/* A new device section prefilled from the client, edited in the grid's own modal form. */
	handleProtect: function(client) {
		var s = this.grid, sid = s.map.data.add('moat', 'device');
		var name = (client.hostname || ('device ' + client.mac)).substring(0, 64);
		s.map.data.set('moat', sid, 'name', name);
		s.map.data.set('moat', sid, 'mac', [ client.mac ]);
		s.map.data.set('moat', sid, 'enabled', '1');
		s.addedSection = sid;
		return s.renderMoreOptionsModal(sid);
	},

	/* Save & Apply only what `moat check` accepts: the daemon would refuse anything else. */
	handleSaveApply: function(ev, mode) {
		return this.handleSave(ev).then(function() {
			return common.checkStaged();
		}).then(function(errors) {
			if (errors) {
				ui.addNotification(_('The configuration is not valid; nothing was applied'),
					E('ul', {}, errors.map(function(e) { return E('li', {}, e); })), 'error');
				return;
			}
			return ui.changes.apply(mode == '0');
		});
	}
});
