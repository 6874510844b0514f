#!/usr/bin/env node
// The `tollgate` executable: runs the compiled CLI from dist/ (built by `npm ci` through the prepare script).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(`tollgate: ${err?.message ?? err}`); process.exit(1); },
);
