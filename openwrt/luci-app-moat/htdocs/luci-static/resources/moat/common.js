'use strict';
'require baseclass';
'require rpc';
'require uci';

/* Shared by the moat views: the luci.moat rpc methods, the staged configuration as UCI text
 * (for the plugin's `check`), and the check-before-apply step. */

var callStatus = rpc.declare({ object: 'luci.moat', method: 'status', expect: { '': {} } });
var callDevices = rpc.declare({ object: 'luci.moat', method: 'devices', expect: { '': {} } });
var callSeries = rpc.declare({ object: 'luci.moat', method: 'series', params: [ 'name' ], expect: { '': {} } });
var callCheck = rpc.declare({ object: 'luci.moat', method: 'check', params: [ 'config' ], expect: { '': {} } });

function quote(v) {
	return "'" + String(v).replace(/'/g, "'\\''") + "'";
}

/* The staged `moat` package (uci.js merges the unsaved changes) as UCI text. */
function stagedText() {
	var out = [];
	uci.sections('moat').forEach(function(s) {
		out.push('config ' + s['.type'] + (s['.anonymous'] ? '' : ' ' + quote(s['.name'])));
		Object.keys(s).forEach(function(k) {
			if (k.charAt(0) == '.')
				return;
			if (Array.isArray(s[k]))
				s[k].forEach(function(v) { out.push('\tlist ' + k + ' ' + quote(v)); });
			else
				out.push('\toption ' + k + ' ' + quote(s[k]));
		});
		out.push('');
	});
	return out.join('\n');
}

return baseclass.extend({
	callStatus: callStatus,
	callDevices: callDevices,
	callSeries: callSeries,
	callCheck: callCheck,
	stagedText: stagedText,

	/* Resolves to null when the staged configuration passes `moat check`, else to the error texts. */
	checkStaged: function() {
		return callCheck(stagedText()).then(function(res) {
			if (res && res.ok)
				return null;
			if (res && res.error)
				return [ res.error ];
			return ((res && res.errors) || []).map(function(e) { return e.text || e.message; });
		});
	},

	formatBytes: function(n) {
		if (n == null)
			return '-';
		var u = [ 'B', 'KB', 'MB', 'GB', 'TB' ], i = 0;
		while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
		return (i ? n.toFixed(1) : n) + ' ' + u[i];
	}
});
