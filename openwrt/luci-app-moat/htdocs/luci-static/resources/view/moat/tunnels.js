'use strict';
'require view';
'require form';
'require uci';
'require ui';
'require moat.common as common';

/* Tunnels and shapers: the `tunnel` and `shaper` sections. Field validation follows moat's model
 * (the same ranges `moat check` enforces); Save & Apply runs the plugin's check on the staged
 * configuration first, so cross-section errors are shown exactly as `moat check` words them. */

function range(lo, hi, what) {
	return function(section_id, value) {
		if (value == null || value === '') return true;
		if (!/^[0-9]+$/.test(value) || +value < lo || +value > hi)
			return _('%s: %d-%d').format(what, lo, hi);
		return true;
	};
}

return view.extend({
	load: function() {
		return uci.load('moat');
	},

	render: function() {
		var m, s, o;

		m = new form.Map('moat', _('moat: tunnels and shapers'),
			_('Tunnels carry protected devices\' traffic (kill switch: a device whose tunnel is down is blocked). Shapers hide activity patterns of devices behind a WireGuard tunnel.'));

		s = m.section(form.GridSection, 'tunnel', _('Tunnels'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;
		s.modaltitle = _('Tunnel');

		o = s.option(form.ListValue, 'type', _('Type'));
		o.value('wireguard', _('WireGuard'));
		o.value('interface', _('Other interface (OpenVPN, …)'));
		o.value('tor', _('Tor (transparent proxy)'));
		o.rmempty = false;

		o = s.option(form.Value, 'device', _('Network device'));
		o.depends('type', 'wireguard');
		o.depends('type', 'interface');
		o.rmempty = false;
		o.validate = function(section_id, value) {
			if (!value) return _('The tunnel\'s network device is required (e.g. wg0)');
			if (!/^[A-Za-z0-9_.-]{1,15}$/.test(value) || value == '.' || value == '..')
				return _('1-15 characters of A-Z a-z 0-9 _ . -');
			return true;
		};

		o = s.option(form.Value, 'dns', _('DNS server in the tunnel'));
		o.datatype = 'ipaddr';
		o.depends('type', 'wireguard');
		o.depends('type', 'interface');

		o = s.option(form.Flag, 'ipv6', _('IPv6 through the tunnel'));
		o.depends('type', 'wireguard');
		o.depends('type', 'interface');
		o.modalonly = true;

		o = s.option(form.Value, 'pad_to', _('Pad packets to'), _('"auto" (the tunnel MTU) or a size in bytes'));
		o.depends('type', 'wireguard');
		o.modalonly = true;
		o.validate = function(section_id, value) {
			if (!value || value == 'auto') return true;
			if (!/^[0-9]+$/.test(value) || +value < 64 || +value > 1488 || +value % 16)
				return _('auto or a multiple of 16 from 64 to 1488');
			return true;
		};

		o = s.option(form.Value, 'cover_dst', _('Cover traffic destination'));
		o.datatype = 'ipaddr';
		o.depends('type', 'wireguard');
		o.modalonly = true;

		o = s.option(form.Flag, 'pad_all', _('Pad every device on this tunnel'));
		o.depends('type', 'wireguard');
		o.modalonly = true;

		o = s.option(form.Value, 'trans_port', _('Tor TransPort'));
		o.datatype = 'port';
		o.depends('type', 'tor');
		o = s.option(form.Value, 'dns_port', _('Tor DNSPort'));
		o.datatype = 'port';
		o.depends('type', 'tor');

		s = m.section(form.GridSection, 'shaper', _('Shapers'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;
		s.modaltitle = _('Shaper');

		o = s.option(form.ListValue, 'mode', _('Mode'));
		o.value('constant', _('Constant rate (link padding)'));
		o.value('stochastic', _('Stochastic (decoy activity periods)'));
		o.rmempty = false;

		o = s.option(form.Value, 'rate', _('Rate (packets/s)'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			if (!value) return _('The rate in packets per second (1-1000) is required');
			return range(1, 1000, _('Rate'))(section_id, value);
		};

		[ [ 'decoys', _('Decoy periods per idle hour'), 0, 360 ],
		  [ 'budget', _('Cover budget (MB/day)'), 0, 100000 ],
		  [ 'decoy_rate', _('Decoy rate (packets/s)'), 1, 1000 ],
		  [ 'decoy_duration', _('Decoy duration (s)'), 1, 3600 ],
		  [ 'idle_gap', _('Idle gap (s)'), 1, 600 ] ].forEach(function(f) {
			o = s.option(form.Value, f[0], f[1]);
			o.depends('mode', 'stochastic');
			o.modalonly = true;
			o.validate = range(f[2], f[3], f[1]);
		});

		return m.render();
	},

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
