'use strict';
// Writes the V8 code cache bin/jvs.cjs compiles the bundle with, for the V8 flags this
// process runs under: runs a sample of commands (the quick ones and a small snapshot,
// status, diff, restore, verify and fork) in a temporary repository, so the functions
// they compile are in the cache, then saves it headed by the bundle's SHA-256. Called
// by scripts/bundle.mjs; the commands' output is discarded.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { loadBundle } = require('../bin/jvs.cjs');

async function main() {
  const { cli, script, cacheFile, digest } = loadBundle();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jvs-code-cache-'));
  try {
    const run = async (args, cwd = dir) => {
      process.chdir(cwd);
      const code = await cli.main(args);
      if (code !== 0) throw new Error(`jvs ${args.join(' ')} exited ${code}`);
    };
    await run(['--version']);
    await run(['--help']);
    await run(['init', 'r']);
    const main = path.join(dir, 'r/main');
    for (let i = 0; i < 40; i++) {
      fs.mkdirSync(path.join(main, `d${i % 4}`), { recursive: true });
      fs.writeFileSync(path.join(main, `d${i % 4}/f${i}.txt`), `file ${i}\n`.repeat(i + 1));
    }
    fs.symlinkSync('d0/f0.txt', path.join(main, 'link'));
    await run(['snapshot', 'first', '--tag', 'v1'], main);
    fs.writeFileSync(path.join(main, 'd1/f1.txt'), 'changed\n');
    for (const args of [['status'], ['diff'], ['snapshot', 'second'], ['history'], ['info'], ['restore', 'v1'], ['restore', 'HEAD'], ['verify'], ['worktree', 'fork', 'side'], ['worktree', 'list'], ['doctor'], ['gc', 'plan'], ['--json', 'status']]) {
      await run(args, main);
    }
  } finally {
    process.chdir(os.tmpdir());
    fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.writeFileSync(cacheFile, Buffer.concat([digest, script.createCachedData()]));
}

main().catch((e) => {
  process.stderr.write(`code cache: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
