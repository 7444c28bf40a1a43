// `npm run bench`: runs every module in scripts/bench/ (each exports `async run(ctx)`
// returning rows) and prints one table. Each module generates its own data in a temp
// dir and measures JVS against native tools (cp, sha256sum, tar, …) in the same run,
// so the ratios hold for this machine at this moment. Medians of several runs.
// package.json starts it with the V8 flags bin/jvs gives `jvs mount`: the rows run in
// this process (agent loop, setup) then measure what the daemon would do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const modules = fs
  .readdirSync(path.join(here, 'bench'))
  .filter((f) => f.endsWith('.mjs') && !f.startsWith('_'))
  .filter((f) => !only.length || only.some((o) => f.includes(o)))
  .sort();

const rows = [];
for (const file of modules) {
  const mod = await import(pathToFileURL(path.join(here, 'bench', file)).href);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `jvs-bench-${file.replace(/\.mjs$/, '')}-`));
  process.stderr.write(`bench: ${file} …\n`);
  try {
    for (const row of await mod.run({ work, bin: path.resolve(here, '../bin/jvs') })) rows.push({ group: file.replace(/\.mjs$/, ''), ...row });
  } catch (e) {
    rows.push({ group: file.replace(/\.mjs$/, ''), metric: 'FAILED', value: String(e?.message ?? e).split('\n')[0], target: '', ok: false });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const cols = ['group', 'metric', 'value', 'target', 'ok'];
const cell = (r, c) => (c === 'ok' ? (r.ok === undefined ? '' : r.ok ? 'yes' : 'NO') : String(r[c] ?? ''));
const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)));
const line = (vals) => '| ' + vals.map((v, i) => v.padEnd(widths[i])).join(' | ') + ' |';
console.log(line(cols));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
for (const r of rows) console.log(line(cols.map((c) => cell(r, c))));
