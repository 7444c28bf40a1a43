import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { runWorkflow } from './workflowShell.js';

/**
 * The game studio's workflow from the users' requirements: work, snapshot with tags,
 * roll back to the last `prework` snapshot when it went wrong, and carry on. The
 * rollback used to leave a worktree that refused the next snapshot, and a plain
 * restore threw unsaved work away without a word.
 */
const SETUP = `
jvs init game --template unity
cd game/main
mkdir -p Assets/Characters Assets/Textures ProjectSettings Library
echo "hero v1" > Assets/Characters/hero.fbx
echo "quality=high" > ProjectSettings/Quality.asset
echo "import cache" > Library/cache.bin
jvs snapshot "Before the character rework" --tag prework
echo "hero v2" > Assets/Characters/hero.fbx
`;

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('workflow: game studio, snapshot and roll back', () => {
  it('runs the rollback as written, and the next snapshot works', () => {
    const { cwd } = runWorkflow(SETUP);
    const out = runWorkflow(`
cd game/main
jvs snapshot "Updated character model v2" --tag character --tag assets
jvs restore --latest-tag prework
echo "hero v3, from prework" > Assets/Characters/hero.fbx
jvs snapshot "Character model v3, from prework" --tag character
`, { cwd });
    expect(out.stdout).toContain('Worktree is now in DETACHED state.');
    expect(out.stdout).not.toContain('Kept unsaved changes'); // nothing was unsaved
    const main = path.join(cwd, 'game/main');
    const all = jvsOk(['history', '--all', '--json'], { cwd: main }).json().snapshots as any[];
    const [v3, v2, pre] = all;
    expect([v3.note, v2.note, pre.note]).toEqual(['Character model v3, from prework', 'Updated character model v2', 'Before the character rework']);
    expect(v3.parent_id).toBe(pre.snapshot_id);
    expect(v3.is_head && v3.is_latest).toBe(true);
    expect(v2.pinned).toBe(true); // the line left behind is kept
    expect(fs.readFileSync(path.join(main, 'Library/cache.bin'), 'utf8')).toBe('import cache\n'); // ignored: untouched
    jvsOk(['restore', v2.snapshot_id], { cwd: main });
    expect(fs.readFileSync(path.join(main, 'Assets/Characters/hero.fbx'), 'utf8')).toBe('hero v2\n');
    jvsOk(['verify', '--all'], { cwd: main });
  });

  it('an unsaved 20 MB file survives `jvs restore --latest-tag prework` and comes back with the printed command', () => {
    const { cwd } = runWorkflow(SETUP);
    const main = path.join(cwd, 'game/main');
    runWorkflow(`
cd game/main
jvs snapshot "Updated character model v2" --tag character --tag assets
head -c 20971520 /dev/urandom > Assets/Textures/hero_4k.png
echo "hero v2, tweaked" > Assets/Characters/hero.fbx
`, { cwd });
    const big = path.join(main, 'Assets/Textures/hero_4k.png');
    const bigHash = sha(big);
    const r = runWorkflow('cd game/main\njvs restore --latest-tag prework', { cwd });
    expect(fs.existsSync(big)).toBe(false);
    expect(fs.readFileSync(path.join(main, 'Assets/Characters/hero.fbx'), 'utf8')).toBe('hero v1\n');
    const m = /^Kept unsaved changes \(1 added, 1 modified, 0 removed\) as snapshot (\S+) \(tag: unsaved, pinned\)\.$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const command = /^Bring them back with: (.+)$/m.exec(r.stdout)![1]!;
    expect(command).toBe(`jvs restore ${m![1]}`);
    // The line the studio works on did not move: the unsaved snapshot is off it.
    const st = jvsOk(['status', '--json'], { cwd: main }).json();
    expect(st.latest_snapshot_id).not.toBe(m![1]);
    const listed = jvsOk(['history', '--all', '--json'], { cwd: main }).json().snapshots.find((s: any) => s.snapshot_id === m![1]);
    expect(listed).toMatchObject({ tags: ['unsaved'], pinned: true });

    runWorkflow(`cd game/main\n${command}`, { cwd });
    expect(sha(big)).toBe(bigHash);
    expect(fs.readFileSync(path.join(main, 'Assets/Characters/hero.fbx'), 'utf8')).toBe('hero v2, tweaked\n');
    expect(jvsOk(['gc', 'plan', '--json'], { cwd: main }).json().to_delete).not.toContain(m![1]);
    jvsOk(['verify', '--all'], { cwd: main });
  });

  it('restore --json lists the unsaved snapshot; --discard-changes keeps none; a clean worktree makes none', () => {
    const { cwd } = runWorkflow(SETUP);
    const main = path.join(cwd, 'game/main');
    jvsOk(['snapshot', 'v2', '--tag', 'character'], { cwd: main });
    const count = () => jvsOk(['history', '--all', '--json'], { cwd: main }).json().snapshots.length;
    const clean = jvsOk(['restore', '--latest-tag', 'prework', '--json'], { cwd: main }).json();
    expect(clean.unsaved).toBeUndefined();
    expect(count()).toBe(2);

    fs.writeFileSync(path.join(main, 'Assets/Characters/hero.fbx'), 'unsaved edit\n');
    const kept = jvsOk(['restore', 'HEAD', '--json'], { cwd: main }).json();
    expect(kept.unsaved).toMatchObject({ total_added: 0, total_modified: 1, total_removed: 0, restore_command: `jvs restore ${kept.unsaved.snapshot_id}` });
    expect(count()).toBe(3);

    fs.writeFileSync(path.join(main, 'Assets/Characters/hero.fbx'), 'throw this away\n');
    const dropped = jvsOk(['restore', 'HEAD', '--discard-changes', '--json'], { cwd: main }).json();
    expect(dropped.unsaved).toBeUndefined();
    expect(count()).toBe(3);
    expect(fs.readFileSync(path.join(main, 'Assets/Characters/hero.fbx'), 'utf8')).toBe('hero v2\n');
  });

  it('restore --dry-run shows what would be written, removed and kept, and changes nothing', () => {
    const { cwd } = runWorkflow(SETUP);
    const main = path.join(cwd, 'game/main');
    fs.writeFileSync(path.join(main, 'Assets/new.mat'), 'material');
    jvsOk(['snapshot', 'v2'], { cwd: main });
    fs.writeFileSync(path.join(main, 'ProjectSettings/Quality.asset'), 'quality=low\n');
    const before = jvsOk(['history', '--all', '--json'], { cwd: main }).json().snapshots.length;
    const p = jvsOk(['restore', '--latest-tag', 'prework', '--dry-run', '--json'], { cwd: main }).json();
    expect(p).toMatchObject({
      dry_run: true,
      would_write: ['Assets/Characters/hero.fbx', 'ProjectSettings/Quality.asset'],
      would_remove: ['Assets/new.mat'],
      unsaved: { action: 'keep', total: 1, modified: ['ProjectSettings/Quality.asset'] },
    });
    expect(p.kept).toBeGreaterThan(0);
    const human = jvsOk(['restore', '--latest-tag', 'prework', '--dry-run'], { cwd: main }).stdout;
    expect(human).toContain('Would write: 2');
    expect(human).toContain('Would remove: 1');
    expect(human).toContain('kept first as a snapshot tagged unsaved');
    expect(jvsOk(['history', '--all', '--json'], { cwd: main }).json().snapshots.length).toBe(before);
    expect(fs.readFileSync(path.join(main, 'ProjectSettings/Quality.asset'), 'utf8')).toBe('quality=low\n');
    expect(fs.existsSync(path.join(main, 'Assets/new.mat'))).toBe(true);
  });

  it('names a file another process holds open when restore replaces it', async () => {
    const { cwd } = runWorkflow(SETUP);
    const main = path.join(cwd, 'game/main');
    jvsOk(['snapshot', 'v2'], { cwd: main });
    // The holder opens the file, then becomes `sleep`: ready once its name is `sleep`
    // (its "ready" line comes before the exec, and jvs names the process as it is then).
    const hold = async () => {
      const p = spawn('sh', ['-c', 'exec 3<Assets/Characters/hero.fbx; echo ready; exec sleep 60'], { cwd: main, stdio: ['ignore', 'pipe', 'ignore'] });
      await new Promise((resolve) => p.stdout!.once('data', resolve));
      const comm = () => {
        try {
          return fs.readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim();
        } catch {
          return '';
        }
      };
      const deadline = Date.now() + 30_000;
      while (comm() !== 'sleep' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(comm()).toBe('sleep');
      return p;
    };
    const first = await hold();
    try {
      const r = jvsOk(['restore', '--latest-tag', 'prework', '--json'], { cwd: main }).json();
      expect(r.open_files).toEqual([{ path: 'Assets/Characters/hero.fbx', pid: first.pid, command: 'sleep' }]);
    } finally {
      first.kill('SIGKILL');
    }
    const second = await hold();
    try {
      const r = jvs(['restore', 'HEAD'], { cwd: main });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`warning: Assets/Characters/hero.fbx is open in process ${second.pid} (sleep)`);
    } finally {
      second.kill('SIGKILL');
    }
    // Nothing open: no warning.
    expect(jvsOk(['restore', '--latest-tag', 'prework'], { cwd: main }).stdout).not.toContain('warning');
  });
});
