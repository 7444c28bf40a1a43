// Many hosts on one JuiceFS volume: Redis metadata on a loopback port and two mount
// points of the same volume, each standing in for one host. Needs `npm run build` first.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { native } from '../../src/native/native.js';
import { JVS_BIN, jvs, jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { writeFiles } from '../helpers/tmp.js';
import { fuseMissing, mountAgain, mountpoint, shOk, snapshotIds } from '../mount/mountHelpers.js';
import { redisMissing, sharedVolume, type Volume } from './volume.js';

const missing = redisMissing();
const mountMissing = missing ?? fuseMissing();
let vol: Volume | undefined;
beforeAll(async () => {
  if (!missing) vol = await sharedVolume(2);
});
afterAll(async () => vol?.close());

/** A repository made through host 1; returns its path as each host sees it. */
function sharedRepo(name: string) {
  const [h1, h2] = vol!.mounts as [string, string];
  fs.mkdirSync(path.join(h1, name));
  jvsOk(['init', 'repo'], { cwd: path.join(h1, name) });
  const at = (host: string) => ({ root: path.join(host, name, 'repo'), main: path.join(host, name, 'repo/main') });
  return { host1: at(h1), host2: at(h2) };
}

function jvsAsync(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [JVS_BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

describe('one JuiceFS volume mounted on two hosts (Redis metadata)', () => {
  itWith('JuiceFS+Redis', missing, 'a snapshot made through one client is listed and verified through the other, and lineage continues across hosts', () => {
    const { host1, host2 } = sharedRepo('listing');
    writeFiles(host1.main, { 'scene.txt': 'v1', 'assets/tex.bin': 'T'.repeat(10_000) });
    const s1 = jvsOk(['snapshot', 'from host 1', '--json'], { cwd: host1.main }).json();
    expect(s1.engine).toBe('juicefs-clone');

    const hist = jvsOk(['history', '--json'], { cwd: host2.main }).json();
    expect(hist.snapshots.map((s: any) => s.snapshot_id)).toEqual([s1.snapshot_id]);
    const v = jvsOk(['verify', '--all', '--json'], { cwd: host2.main }).json();
    expect(v.results.map((r: any) => [r.snapshot_id, r.payload_hash_valid, r.tamper_detected])).toEqual([[s1.snapshot_id, true, false]]);
    expect(fs.readFileSync(path.join(host2.root, '.jvs/snapshots', s1.snapshot_id, 'scene.txt'), 'utf8')).toBe('v1');

    writeFiles(host2.main, { 'scene.txt': 'v2 from host 2' });
    const s2 = jvsOk(['snapshot', 'from host 2', '--json'], { cwd: host2.main }).json();
    expect(s2.parent_id).toBe(s1.snapshot_id);
    const hist1 = jvsOk(['history', '--json'], { cwd: host1.main }).json();
    expect(hist1.snapshots.map((s: any) => s.snapshot_id)).toEqual([s2.snapshot_id, s1.snapshot_id]);

    jvsOk(['restore', s1.snapshot_id], { cwd: host1.main });
    expect(fs.readFileSync(path.join(host2.main, 'scene.txt'), 'utf8')).toBe('v1');
  });

  itWith('JuiceFS+Redis', missing, 'the repository lock held through one client refuses a writer on the other with E_LOCKED, and is handed over when released', () => {
    const n = native();
    if (!n) throw new Error('native addon not built: the flock repository lock cannot be tested (run `npm run build:native`)');
    const { host1, host2 } = sharedRepo('lock');
    writeFiles(host1.main, { f: '1' });
    // Host 1 holds the repository lock exactly as jvs does: flock on .jvs/locks/repo plus the owner record.
    const fd = n.flockExclusive(path.join(host1.root, '.jvs/locks/repo'));
    fs.writeFileSync(path.join(host1.root, '.jvs/locks/repo.owner.json'), JSON.stringify({ pid: process.pid, host: 'host-1', since: new Date().toISOString(), command: 'snapshot' }) + '\n');
    try {
      const r = jvs(['--no-wait', 'snapshot', 'blocked', '--json'], { cwd: host2.main });
      expect(r.code).not.toBe(0);
      const err = JSON.parse(r.stdout).error;
      expect(err.class).toBe('E_LOCKED');
      expect(err.message).toContain(`${process.pid}@host-1`);
      expect(fs.readdirSync(path.join(host2.root, '.jvs/snapshots'))).toEqual([]);
    } finally {
      fs.rmSync(path.join(host1.root, '.jvs/locks/repo.owner.json'), { force: true });
      fs.closeSync(fd);
    }
    // FUSE delivers the release asynchronously: --wait covers the few milliseconds.
    const s = jvsOk(['--wait', '30', 'snapshot', 'after release', '--json'], { cwd: host2.main }).json();
    expect(s.engine).toBe('juicefs-clone');
  });

  itWith('JuiceFS+Redis', missing, 'concurrent snapshots from both clients are serialised: every one lands and history stays one chain', async () => {
    const { host1, host2 } = sharedRepo('race');
    writeFiles(host1.main, { 'seed.txt': 'seed' });
    const perHost = 3;
    const runs = [];
    for (let i = 0; i < perHost; i++) {
      runs.push(jvsAsync(['--wait', '120', 'snapshot', `host1 #${i}`, '--json'], host1.main));
      runs.push(jvsAsync(['--wait', '120', 'snapshot', `host2 #${i}`, '--json'], host2.main));
    }
    const results = await Promise.all(runs);
    for (const r of results) expect(r.code, r.stderr || r.stdout).toBe(0);
    const ids = results.map((r) => JSON.parse(r.stdout).snapshot_id as string);

    // One chain: the lineage of the latest snapshot contains every snapshot taken. A
    // lost update (two writers reading the same head) would leave one of them out.
    const lineage = jvsOk(['history', '--json'], { cwd: host2.main }).json().snapshots.map((s: any) => s.snapshot_id);
    expect([...lineage].sort()).toEqual([...ids].sort());
    const parents = results.map((r) => JSON.parse(r.stdout).parent_id as string | undefined);
    expect(new Set(parents).size).toBe(parents.length);
    const v = jvsOk(['verify', '--all', '--json'], { cwd: host1.main }).json();
    expect(v.results).toHaveLength(ids.length);
    expect(v.results.every((r: any) => r.payload_hash_valid && !r.tamper_detected)).toBe(true);
    // Audit appends from both hosts all landed (none overwrote another's line).
    const audit = fs.readFileSync(path.join(host1.root, '.jvs/audit/audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.filter((a) => a.event_type === 'snapshot_create').map((a) => a.snapshot_id).sort()).toEqual([...ids].sort());
  });

  itWith('JuiceFS+Redis+FUSE', mountMissing, 'a `jvs mount` daemon on one client shows snapshots made on the other, and its control-file snapshots are seen there', () => {
    const { host1, host2 } = sharedRepo('mount');
    writeFiles(host1.main, { 'level.txt': 'level 1' });
    const mnt = mountpoint();
    mountAgain(host1.main, mnt); // unmounted by mountHelpers' afterEach, before the volume goes
    expect(snapshotIds(mnt)).toEqual([]);

    writeFiles(host2.main, { 'level.txt': 'level 2 from host 2' });
    const s = jvsOk(['snapshot', 'made on host 2', '--json'], { cwd: host2.main }).json();
    expect(snapshotIds(mnt)).toEqual([s.snapshot_id]);
    expect(fs.readFileSync(path.join(mnt, '.jvs/snapshots', s.snapshot_id, 'level.txt'), 'utf8')).toBe('level 2 from host 2');
    expect(fs.readFileSync(path.join(mnt, 'current/level.txt'), 'utf8')).toBe('level 2 from host 2');

    shOk('echo "through the mount on host 1" > .jvs/ctl/snapshot', mnt);
    const hist = jvsOk(['history', '--json'], { cwd: host2.main }).json();
    expect(hist.snapshots.map((x: any) => x.note)).toEqual(['through the mount on host 1', 'made on host 2']);
    const latest = JSON.parse(fs.readFileSync(path.join(host2.root, '.jvs/descriptors', `${hist.snapshots[0].snapshot_id}.json`), 'utf8'));
    expect(latest.parent_id).toBe(s.snapshot_id);
    expect(latest.engine).toBe('juicefs-clone');
  });
});
