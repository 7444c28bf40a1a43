import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { readTree, tmpDir, writeFiles } from '../helpers/tmp.js';

/** A project folder as a studio has it before JVS: files, a hard link, a symlink, an open handle. */
function project() {
  const dir = tmpDir();
  const p = path.join(dir, 'MyGame');
  writeFiles(p, { 'Assets/hero.fbx': 'hero', 'ProjectSettings/q.asset': 'q', 'Library/cache': 'c', 'main': 'a file named main', 'worktrees/x.txt': 'a folder named worktrees' });
  fs.symlinkSync('Assets/hero.fbx', path.join(p, 'hero-link'));
  fs.linkSync(path.join(p, 'Assets/hero.fbx'), path.join(p, 'hero-hard'));
  return { dir, p };
}

describe('jvs init --here: bring an existing project in', () => {
  it('makes the folder the repository and its entries the main worktree, by rename (same inodes, nothing copied)', () => {
    const { p } = project();
    const before = readTree(p);
    const ino = fs.statSync(path.join(p, 'Assets/hero.fbx')).ino;
    const assetsIno = fs.statSync(path.join(p, 'Assets')).ino;
    const r = jvsOk(['init', '--here', '--template', 'unity'], { cwd: p });
    expect(r.stdout).toContain(`Initialized JVS repository in ${p}`);
    expect(r.stdout).toContain(`Moved 7 entries into ${path.join(p, 'main')} by rename (nothing copied)`);
    const main = path.join(p, 'main');
    const after = readTree(main);
    delete after['.jvsignore'];
    expect(after).toEqual(before);
    expect(fs.statSync(path.join(main, 'Assets/hero.fbx')).ino).toBe(ino);
    expect(fs.statSync(path.join(main, 'Assets')).ino).toBe(assetsIno);
    expect(fs.statSync(path.join(main, 'hero-hard')).ino).toBe(ino);
    expect(fs.readFileSync(path.join(main, '.jvsignore'), 'utf8')).toContain('/[Ll]ibrary/');
    expect(fs.readdirSync(p).sort()).toEqual(['.jvs', 'main']);

    // Commands work from the repository root (main is the default worktree) and inside main/.
    const s = jvsOk(['snapshot', 'first', '--json'], { cwd: p }).json();
    expect(s.worktree_name).toBe('main');
    expect(fs.existsSync(path.join(p, '.jvs/snapshots', s.snapshot_id, 'Library'))).toBe(false); // the template applies
    expect(jvsOk(['status', '--json'], { cwd: path.join(main, 'Assets') }).json().clean).toBe(true);
    jvsOk(['verify', '--all'], { cwd: p });

    const again = jvs(['init', '--here', '--json'], { cwd: p });
    expect(again.json().error.class).toBe('E_ALREADY_EXISTS');
  });

  it('finishes an interrupted adoption when run again, and refuses a name with --here', () => {
    const { p } = project();
    // As a crash in step 1 leaves it: some entries already in the stage folder.
    const stage = path.join(p, '.jvs-adopt-0badc0de');
    fs.mkdirSync(stage);
    fs.renameSync(path.join(p, 'Assets'), path.join(stage, 'Assets'));
    const r = jvsOk(['init', '--here', '--json'], { cwd: p }).json();
    expect(r.resumed).toBe(true);
    expect(fs.readFileSync(path.join(p, 'main/Assets/hero.fbx'), 'utf8')).toBe('hero');
    expect(fs.readFileSync(path.join(p, 'main/ProjectSettings/q.asset'), 'utf8')).toBe('q');
    expect(fs.existsSync(stage)).toBe(false);
    expect(jvs(['init', 'x', '--here', '--json'], { cwd: p }).json().error.class).toBe('E_USAGE');
  });

  it('refuses to nest a repository inside a worktree unless --force', () => {
    const dir = tmpDir();
    jvsOk(['init', 'outer'], { cwd: dir });
    const main = path.join(dir, 'outer/main');
    const nested = jvs(['init', 'inner', '--json'], { cwd: main });
    expect(nested.code).toBe(2);
    expect(nested.json().error).toMatchObject({ class: 'E_USAGE' });
    expect(nested.json().error.message).toContain(`inside the JVS repository ${path.join(dir, 'outer')}`);
    expect(nested.json().error.hint).toContain('--force');
    expect(fs.existsSync(path.join(main, 'inner'))).toBe(false);
    writeFiles(path.join(main, 'proj'), { 'a.txt': 'a' });
    expect(jvs(['init', '--here', '--json'], { cwd: path.join(main, 'proj') }).json().error.class).toBe('E_USAGE');
    expect(fs.readFileSync(path.join(main, 'proj/a.txt'), 'utf8')).toBe('a'); // nothing moved
    jvsOk(['init', 'inner', '--force'], { cwd: main });
    expect(fs.existsSync(path.join(main, 'inner/.jvs/format_version'))).toBe(true);
  });

  it('applies a template to an existing repository, keeping the user\'s rules', () => {
    const dir = tmpDir();
    jvsOk(['init', 'game'], { cwd: dir });
    const main = path.join(dir, 'game/main');
    fs.writeFileSync(path.join(main, '.jvsignore'), '# mine\nRecordings/\n/[Ll]ibrary/\n');
    const r = jvsOk(['init', '--template', 'unity', '--json'], { cwd: main }).json();
    expect(r.rules_added).toBeGreaterThan(0);
    const text = fs.readFileSync(path.join(main, '.jvsignore'), 'utf8');
    expect(text.startsWith('# mine\nRecordings/\n/[Ll]ibrary/\n')).toBe(true);
    expect(text).toContain('# from the unity template');
    expect(text.split('\n').filter((l) => l === '/[Ll]ibrary/')).toHaveLength(1); // not added twice
    expect(jvsOk(['init', '--template', 'unity'], { cwd: main }).stdout).toContain('already has every rule of the unity template');
    const bad = jvs(['init', '--template', 'nope', '--json'], { cwd: main });
    expect(bad.json().error.class).toBe('E_USAGE');
  });
});
