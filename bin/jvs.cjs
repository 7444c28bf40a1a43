#!/usr/bin/env node
// Entry point: loads the bundled CLI (scripts/bundle.mjs); heavy modules load on demand.
// bin/jvs (the installed command) sets NODE_EXTRA_CA_CERTS aside to spare Node's
// start-up; programs jvs starts get it back.
const saved = process.env.JVS_SAVED_NODE_EXTRA_CA_CERTS;
if (saved !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = saved;
  delete process.env.JVS_SAVED_NODE_EXTRA_CA_CERTS;
}
const { main } = await import('../dist/cli/jvs.mjs');

process.exitCode = await main(process.argv.slice(2));
