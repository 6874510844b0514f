// The API a policy script sees inside QuickJS (`context`, `request`, `response`), evaluated once per compiled
// script. Plain ES5 with no host functions: everything crosses the boundary as one JSON string each way.

/** What a policy script sees as its parameters. */
export const SCRIPT_PARAMETERS = ['context', 'request', 'response'] as const;

/** Wraps the script in a function so `context`, `request` and `response` are its parameters. */
export function scriptProgram(source: string): string {
  return `globalThis.__user = function (${SCRIPT_PARAMETERS.join(', ')}) {\n${source}\n};`;
}

export const PRELUDE = `
'use strict';
(function () {
  var REQ = 'request.header.', RES = 'response.header.';
  function text(v) { return v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v); }
  function own(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }
  globalThis.print = function () {};
  globalThis.__invoke = function (input) {
    var job = JSON.parse(input), vars = job.variables, changed = {};
    var request = job.request, response = job.response;
    function setHeader(headers, name, value) {
      if (value === null || value === undefined) delete headers[name]; else headers[name] = String(value);
    }
    var context = {
      flow: job.flow,
      getVariable: function (name) {
        name = String(name);
        if (name.indexOf(REQ) === 0) { var h = name.slice(REQ.length).toLowerCase(); return own(request.headers, h) ? request.headers[h] : null; }
        if (response && name.indexOf(RES) === 0) { var r = name.slice(RES.length).toLowerCase(); return own(response.headers, r) ? response.headers[r] : null; }
        if (name === 'response.status.code' && response) return response.status;
        return own(vars, name) ? vars[name] : null;
      },
      setVariable: function (name, value) {
        name = String(name);
        if (name.indexOf(REQ) === 0) return setHeader(request.headers, name.slice(REQ.length).toLowerCase(), value);
        if (response && name.indexOf(RES) === 0) return setHeader(response.headers, name.slice(RES.length).toLowerCase(), value);
        vars[name] = text(value);
        changed[name] = vars[name];
      },
      removeVariable: function (name) { context.setVariable(name, null); }
    };
    globalThis.__user(context, request, response);
    return JSON.stringify({
      variables: changed,
      requestHeaders: request.headers,
      requestBody: JSON.stringify(request.body === undefined ? null : request.body),
      responseHeaders: response ? response.headers : null,
      responseBody: response ? (typeof response.body === 'string' ? response.body : JSON.stringify(response.body)) : null
    });
  };
})();
`;
