#!/usr/bin/env node
'use strict';
// Entry point: runs the bundled CLI (dist/cli/jvs.cjs, scripts/bundle.mjs); heavy
// modules load on demand. bin/jvs (the installed command) sets NODE_EXTRA_CA_CERTS
// aside to spare Node's start-up; programs jvs starts get it back.
//
// Start-up is most of a quick command's time, so this file stays CommonJS (Node's ES
// module loader costs ~7 ms before any code runs) and compiles the bundle with V8's code
// cache: `npm run build` runs a sample of commands and saves the compiled functions next
// to the bundle (scripts/code-cache.cjs), one file per set of V8 flags (a cache made
// under other flags is refused by V8). A cache is used only when it was made from this
// very bundle (its SHA-256 heads the file), so an edited bundle never runs stale code.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createHash } = require('node:crypto');
const Module = require('node:module');

const BUNDLE = path.resolve(__dirname, '../dist/cli/jvs.cjs');

/** The code cache file for this Node and these V8 flags. */
function cacheFileFor(execArgv) {
  const key = createHash('sha256').update(`${process.version}\0${execArgv.join('\0')}`).digest('hex').slice(0, 12);
  return `${BUNDLE}.${key}.cache`;
}

/**
 * Compile and run the bundle; returns its exports, the compiled script (for
 * createCachedData) and whether a cache was used: 'used', 'none' (no file) or
 * 'refused' (another bundle, or V8 rejected it).
 */
function loadBundle(execArgv = process.execArgv) {
  // Hashed as the bytes read (hashing the decoded string would encode it to UTF-8 again: ~0.6 ms).
  const bytes = fs.readFileSync(BUNDLE);
  const digest = createHash('sha256').update(bytes).digest();
  const source = bytes.toString('utf8');
  const cacheFile = cacheFileFor(execArgv);
  let cachedData;
  let cache = 'none';
  try {
    const raw = fs.readFileSync(cacheFile);
    if (raw.length > 32 && raw.subarray(0, 32).equals(digest)) cachedData = raw.subarray(32);
    else cache = 'refused';
  } catch {
    /* no cache: compile from source */
  }
  const script = new vm.Script(Module.wrap(source), { filename: BUNDLE, ...(cachedData ? { cachedData } : {}) });
  if (cachedData) cache = script.cachedDataRejected ? 'refused' : 'used';
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, Module.createRequire(BUNDLE), mod, BUNDLE, path.dirname(BUNDLE));
  return { cli: mod.exports, script, cache, cacheFile, digest };
}

module.exports = { loadBundle, cacheFileFor, BUNDLE };

if (require.main === module) {
  const saved = process.env.JVS_SAVED_NODE_EXTRA_CA_CERTS;
  if (saved !== undefined) {
    process.env.NODE_EXTRA_CA_CERTS = saved;
    delete process.env.JVS_SAVED_NODE_EXTRA_CA_CERTS;
  }
  const { cli, cache } = loadBundle();
  // A 10,000-file snapshot or restore keeps alive nearly all it allocates (~15 MiB of
  // index records), and V8's young generation starts at 1 MiB and doubles only after
  // scavenges that find most of it alive: 6-7 scavenges copying the same records again,
  // 15-30 ms of a restore. Growing 16-fold at the first such scavenge reaches V8's usual
  // ceiling (16 MiB) at once: 3-4 scavenges, about half the time. V8 reads this flag
  // whenever it grows the space, so it is set here, after the bundle was compiled from
  // its code cache (a flag set before would not match the flags the cache was made under).
  // The launcher's --max/min-semi-space-size flags did the same at a start-up cost
  // (docs/performance.md); this one costs nothing at start.
  const v8 = require('node:v8');
  v8.setFlagsFromString('--semi-space-growth-factor=16');
  // A command runs most of its code once. V8 optimises a function with TurboFan once it
  // has run a budget of bytecode (67,584 bytes by default), and in a 10,000-file snapshot
  // that compiling took ~18 % of the process's CPU, on a background thread that competes
  // with the hard-link threads for two cores, for loops that were nearly done when their
  // optimised code arrived. Eight times that budget leaves the one-shot loops in the
  // interpreter (alternating runs: snapshot 160 -> 130 ms, restore 124 -> 112 ms) while
  // long operations (millions of entries) still get optimised code a little later. Not
  // for `mount` (the same test as bin/jvs's heap flags): the daemon lives long and serves
  // bursts of requests, so it keeps V8's default (untars through it were too noisy to
  // show the budget harmless there). Set here for the same reason as the flag above (the
  // bundle's code cache was made without it).
  if (!process.argv.slice(2).includes('mount')) v8.setFlagsFromString('--interrupt-budget=540672');
  if (process.env.JVS_TRACE === '1') process.once('exit', () => process.stderr.write(`jvs trace: code cache ${cache}\n`));
  cli.main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
