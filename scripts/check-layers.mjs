// Import-direction check (STYLE habit 2), run by `npm run check`:
//   - nothing outside src/cli imports src/cli; only src/cli (which starts the daemon) imports src/fuse
//   - src/format imports only src/format and src/errors (pure functions over bytes)
//   - process.exit only in src/cli
import fs from 'node:fs';
import path from 'node:path';

const src = path.resolve('src');
const files = [];
(function walk(d) {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (p.endsWith('.ts')) files.push(p);
  }
})(src);

const problems = [];
const room = (p) => path.relative(src, p).split(path.sep)[0];
for (const f of files) {
  const text = fs.readFileSync(f, 'utf8');
  const from = room(f);
  for (const m of text.matchAll(/(?:from\s+|import\()\s*['"]([^'"]+)['"]/g)) {
    const spec = m[1];
    if (!spec.startsWith('.')) continue;
    const to = room(path.resolve(path.dirname(f), spec));
    if (to === 'cli' && from !== 'cli') problems.push(`${path.relative(src, f)} imports src/cli (${spec})`);
    if (to === 'fuse' && from !== 'fuse' && from !== 'cli') problems.push(`${path.relative(src, f)} imports src/fuse (${spec})`);
    if (from === 'format' && to !== 'format' && to.replace(/\.(js|ts)$/, '') !== 'errors') problems.push(`${path.relative(src, f)}: src/format must stay pure but imports ${spec}`);
  }
  if (/process\.exit\(/.test(text) && from !== 'cli') problems.push(`${path.relative(src, f)} calls process.exit outside src/cli`);
}
if (problems.length) {
  console.error('layer check failed:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log(`layer check: ${files.length} files, import directions ok`);
