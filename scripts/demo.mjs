// The quick-start demo: the core loop of JVS on a repository in a temp dir on local
// disk, printing each command as a user would type it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/jvs');
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'jvs-demo-'));
let cwd = base;

function jvs(...args) {
  console.log(`\n$ jvs ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const r = spawnSync(bin, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  process.stdout.write(r.stdout + r.stderr);
  return r;
}
function shell(text, fn) {
  console.log(`\n$ ${text}`);
  fn();
}
const must = (r) => {
  if (r.status !== 0) {
    console.error(`\ndemo failed (exit ${r.status})`);
    process.exit(1);
  }
  return r;
};

console.log(`JVS demo in ${base}`);
must(jvs('init', 'game'));
cwd = path.join(base, 'game/main');
shell('mkdir -p Assets && echo "hero v1" > Assets/hero.txt && echo 1 > build.cfg', () => {
  fs.mkdirSync(path.join(cwd, 'Assets'));
  fs.writeFileSync(path.join(cwd, 'Assets/hero.txt'), 'hero v1\n');
  fs.writeFileSync(path.join(cwd, 'build.cfg'), '1\n');
});
const first = JSON.parse(must(jvs('snapshot', 'first playable', '--tag', 'v1', '--json')).stdout);
shell('echo "hero v2 (broken)" > Assets/hero.txt', () => fs.writeFileSync(path.join(cwd, 'Assets/hero.txt'), 'hero v2 (broken)\n'));
must(jvs('snapshot', 'try new hero'));
must(jvs('history'));
must(jvs('restore', 'v1'));
shell('cat Assets/hero.txt', () => process.stdout.write(fs.readFileSync(path.join(cwd, 'Assets/hero.txt'), 'utf8')));
shell('echo "hero v1.1 (fixed)" > Assets/hero.txt', () => fs.writeFileSync(path.join(cwd, 'Assets/hero.txt'), 'hero v1.1 (fixed)\n'));
must(jvs('snapshot', 'hero fixed, from v1'));
shell('echo "unsaved tweak" >> build.cfg', () => fs.appendFileSync(path.join(cwd, 'build.cfg'), 'unsaved tweak\n'));
must(jvs('restore', 'v1'));
must(jvs('restore', '--latest-tag', 'unsaved'));
shell('cat build.cfg', () => process.stdout.write(fs.readFileSync(path.join(cwd, 'build.cfg'), 'utf8')));
must(jvs('restore', 'HEAD', '--discard-changes'));
must(jvs('history', '--all'));
must(jvs('worktree', 'fork', first.snapshot_id, 'hero-rework'));
must(jvs('worktree', 'list'));
must(jvs('verify', '--all'));
must(jvs('info'));
console.log(`\nDemo finished. The repository is in ${path.join(base, 'game')} (remove it when done).`);
