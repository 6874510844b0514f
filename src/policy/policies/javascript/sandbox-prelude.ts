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
  /** The run between __invoke and __output (its Promise jobs run in between); nothing is kept once it is read. */
  var run = null;
  globalThis.print = function () {};
  globalThis.__invoke = function (input) {
    var job = JSON.parse(input), vars = job.variables, changed = {};
    var request = job.request, response = job.response;
    function setHeader(headers, name, value) {
      if (value === null || value === undefined) delete headers[name]; else headers[name] = String(value);
    }
    // A function of its own, not context.setVariable: a member of context that names context closes a cycle, which
    // QuickJS's reference counting never frees, so every run's request stayed in the heap until it ran out of memory.
    function setVariable(name, value) {
      name = String(name);
      if (name.indexOf(REQ) === 0) return setHeader(request.headers, name.slice(REQ.length).toLowerCase(), value);
      if (response && name.indexOf(RES) === 0) return setHeader(response.headers, name.slice(RES.length).toLowerCase(), value);
      vars[name] = text(value);
      changed[name] = vars[name];
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
      setVariable: setVariable,
      removeVariable: function (name) { setVariable(name, null); }
    };
    var returned = globalThis.__user(context, request, response);
    run = { changed: changed, request: request, response: response, settled: true, failed: false, reason: undefined };
    // A Promise the script returns is its outcome: a rejection fails the run, as a throw does.
    if (returned !== null && (typeof returned === 'object' || typeof returned === 'function') && typeof returned.then === 'function') {
      var mine = run;
      mine.settled = false;
      Promise.resolve(returned).then(
        function () { mine.settled = true; },
        function (reason) { mine.settled = true; mine.failed = true; mine.reason = reason; }
      );
    }
  };
  globalThis.__output = function () {
    var r = run;
    run = null;
    if (r.failed) throw r.reason;
    if (!r.settled) throw new Error('the Promise the script returned never settled (there are no timers or I/O to settle it)');
    var request = r.request, response = r.response;
    return JSON.stringify({
      variables: r.changed,
      requestHeaders: request.headers,
      requestBody: JSON.stringify(request.body === undefined ? null : request.body),
      responseHeaders: response ? response.headers : null,
      responseBody: response ? (typeof response.body === 'string' ? response.body : JSON.stringify(response.body)) : null
    });
  };
})();
`;
