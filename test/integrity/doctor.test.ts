import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { writeFiles } from '../helpers/tmp.js';
import { descriptorIds, expectError, newRepo, run, snapshot, worktreeConfig } from './support.js';

function doctorJson(cwd: string, args: string[] = []) {
  return run(['doctor', '--json', ...args], cwd);
}

describe('doctor', () => {
  it('a healthy repository prints the reference phrase', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    snapshot(repo, 'one');
    const r = run(['doctor', '--strict'], repo.main);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Repository is healthy.');
  });

  it('--repair-list names the five repairs', () => {
    const repo = newRepo();
    const r = run(['doctor', '--repair-list', '--json'], repo.main);
    expect(r.json().repairs.map((x: any) => x.name)).toEqual(['clean_tmp', 'clean_intents', 'advance_head', 'rebuild_index', 'audit_repair']);
  });

  it('without --repair-runtime it reports an interrupted snapshot, changes nothing, and names the fix', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const r0 = run(['snapshot', 'x'], repo.main, { JVS_FAULT: 'snapshot.3-fsync' });
    expect(r0.signal).toBe('SIGKILL');
    const intentsBefore = fs.readdirSync(path.join(repo.ctl, 'intents'));
    expect(intentsBefore).toHaveLength(1);
    const r = doctorJson(repo.main);
    expectError(r, 'E_PARTIAL_SNAPSHOT');
    expect(r.json().error.hint).toContain('--repair-runtime');
    expect(r.json().findings.some((f: any) => f.check === 'intent' && f.repair === 'clean_intents')).toBe(true);
    expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual(intentsBefore);
    const fixed = doctorJson(repo.main, ['--repair-runtime']);
    expect(fixed.code).toBe(0);
    expect(fixed.json().repairs_applied[0].repair).toBe('clean_intents');
    expect(fs.readdirSync(path.join(repo.ctl, 'snapshots'))).toEqual([]);
  });

  it('clean_tmp removes staging leftovers that no intent owns, and only those', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(repo, 'one');
    const stray = [
      path.join(repo.ctl, 'snapshots', '1700000000000-0000abcd.tmp'),
      path.join(repo.ctl, 'tmp', 'fork-1700000000000-0000abcd'),
    ];
    for (const d of stray) writeFiles(d, { 'f': 'x' });
    const files = [
      path.join(repo.ctl, 'descriptors', '1700000000000-0000abcd.json.tmp'),
      path.join(repo.ctl, 'worktrees/main/config.json.0123abcd.tmp'),
      path.join(repo.ctl, 'pins', 'x.json.0123abcd.tmp'),
    ];
    for (const f of files) fs.writeFileSync(f, '{');
    // Not leftovers: a live process's clock probe and a running mount daemon's log.
    const live = [path.join(repo.ctl, 'tmp', `.clock-${process.pid}-0000abcd`), path.join(repo.ctl, 'tmp', `mount-${process.pid}.log`)];
    for (const f of live) fs.writeFileSync(f, '');
    const r = doctorJson(repo.main, ['--repair-runtime']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json().repairs_applied.filter((a: any) => a.repair === 'clean_tmp')).toHaveLength(5);
    for (const f of live) expect(fs.existsSync(f), f).toBe(true);
    for (const p of [...stray, ...files]) expect(fs.existsSync(p), p).toBe(false);
    expect(descriptorIds(repo)).toEqual([s1]);
    expect(run(['verify', '--all'], repo.main).code).toBe(0);
  });

  it('a snapshot folder without descriptor or tombstone is reported, never deleted', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    snapshot(repo, 'one');
    const orphan = path.join(repo.ctl, 'snapshots', '1700000000000-0000beef');
    writeFiles(orphan, { 'precious.txt': 'data' });
    const r = doctorJson(repo.main, ['--repair-runtime']);
    expectError(r, 'E_PARTIAL_SNAPSHOT');
    expect(fs.readFileSync(path.join(orphan, 'precious.txt'), 'utf8')).toBe('data');
  });

  it('rebuild_index rebuilds an unreadable index cache from the descriptors', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    snapshot(repo, 'one');
    const db = path.join(repo.ctl, 'index.sqlite');
    fs.writeFileSync(db, 'this is not sqlite at all');
    expectError(doctorJson(repo.main), 'E_IO');
    const r = doctorJson(repo.main, ['--repair-runtime']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json().repairs_applied.map((a: any) => a.repair)).toContain('rebuild_index');
    expect(fs.readFileSync(db).subarray(0, 15).toString()).toBe('SQLite format 3');
    expect(r.json().repairs_applied.find((a: any) => a.repair === 'rebuild_index').result).toMatch(/^rebuilt from 1 descriptor/);
    expect(run(['history'], repo.main).code).toBe(0);
  });

  it('audit_repair cuts a torn last line, and leaves edited records reported', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    snapshot(repo, 'one');
    const log = path.join(repo.ctl, 'audit/audit.jsonl');
    const good = fs.readFileSync(log, 'utf8');
    fs.appendFileSync(log, '{"timestamp":"2026-01-01T00:00:00Z","event_ty');
    expectError(run(['verify', '--all', '--json'], repo.main), 'E_AUDIT_CHAIN_BROKEN');
    const r = doctorJson(repo.main, ['--repair-runtime']);
    expect(r.code, r.stdout).toBe(0);
    expect(fs.readFileSync(log, 'utf8').startsWith(good)).toBe(true);
    expect(run(['verify', '--all'], repo.main).code).toBe(0);
    // An edited record is evidence: reported, not rewritten.
    const edited = fs.readFileSync(log, 'utf8').replace('"snapshot_create"', '"snapshot_created"');
    fs.writeFileSync(log, edited);
    const bad = doctorJson(repo.main, ['--repair-runtime']);
    expectError(bad, 'E_AUDIT_CHAIN_BROKEN');
    expect(fs.readFileSync(log, 'utf8')).toBe(edited);
  });

  it('an unreadable intent is reported as E_DESCRIPTOR_CORRUPT and removed by clean_intents', () => {
    const repo = newRepo();
    const f = path.join(repo.ctl, 'intents', 'restore-1-abcd.json');
    fs.writeFileSync(f, '{"id": "restore-1-abcd", "operation": ');
    expectError(doctorJson(repo.main), 'E_DESCRIPTOR_CORRUPT');
    expect(doctorJson(repo.main, ['--repair-runtime']).code).toBe(0);
    expect(fs.existsSync(f)).toBe(false);
  });

  it('--strict re-hashes payloads; the quick check compares stats only', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'AAAA' });
    const s1 = snapshot(repo, 'one');
    const f = path.join(repo.ctl, 'snapshots', s1, 'a.txt');
    const mtimeNs = fs.statSync(f, { bigint: true }).mtimeNs;
    fs.chmodSync(f, 0o644);
    fs.writeFileSync(f, 'AAAB');
    // A write moves the mtime: the quick check sees it (issue 14, item 5).
    expectError(doctorJson(repo.main), 'E_PAYLOAD_HASH_MISMATCH');
    // Size and mtime put back: only re-hashing finds it.
    execFileSync('touch', ['-m', '-d', `@${mtimeNs / 1_000_000_000n}.${String(mtimeNs % 1_000_000_000n).padStart(9, '0')}`, f]);
    expect(fs.statSync(f, { bigint: true }).mtimeNs).toBe(mtimeNs);
    expect(doctorJson(repo.main).code).toBe(0);
    const strict = doctorJson(repo.main, ['--strict', '--repair-runtime']);
    expectError(strict, 'E_PAYLOAD_HASH_MISMATCH');
    expect(strict.json().findings[0].repair).toBeUndefined();
  });

  it('advance_head does not move a worktree that took another snapshot since the crash', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(repo, 'one');
    writeFiles(repo.main, { 'a.txt': 'B' });
    expect(run(['snapshot', 'crashed'], repo.main, { JVS_FAULT: 'snapshot.8-publish-descriptor' }).signal).toBe('SIGKILL');
    const s3 = snapshot(repo, 'after the crash');
    const r = doctorJson(repo.main, ['--repair-runtime']);
    expect(r.code, r.stdout).toBe(0);
    const ids = descriptorIds(repo);
    expect(ids).toHaveLength(3);
    expect(worktreeConfig(repo)).toMatchObject({ head_snapshot_id: s3, latest_snapshot_id: s3 });
    const crashed = ids.find((id) => id !== s1 && id !== s3)!;
    expect(JSON.parse(fs.readFileSync(path.join(repo.ctl, 'descriptors', `${crashed}.json`), 'utf8')).parent_id).toBe(s1);
  });

  it('a worktree whose payload folder is missing is reported with E_NOT_FOUND', () => {
    const repo = newRepo();
    fs.rmSync(repo.main, { recursive: true });
    const r = run(['doctor', '--json'], repo.root);
    expectError(r, 'E_NOT_FOUND');
    expect(r.json().findings.some((f: any) => f.check === 'worktree')).toBe(true);
  });

  it('a folder under worktrees/ that belongs to no worktree is reported and left alone', () => {
    const repo = newRepo();
    const stray = path.join(repo.root, 'worktrees/lost-and-found');
    writeFiles(stray, { 'work.txt': 'keep me' });
    const r = doctorJson(repo.main, ['--repair-runtime']);
    expectError(r, 'E_NOT_FOUND');
    expect(r.json().findings[0].message).toContain('worktrees/lost-and-found');
    expect(fs.readFileSync(path.join(stray, 'work.txt'), 'utf8')).toBe('keep me');
  });

  it('after a crash and a restore elsewhere, the recovered snapshot becomes latest while the head stays put', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(repo, 'one');
    writeFiles(repo.main, { 'a.txt': 'B' });
    const s2 = snapshot(repo, 'two');
    writeFiles(repo.main, { 'a.txt': 'C' });
    expect(run(['snapshot', 'crashed'], repo.main, { JVS_FAULT: 'snapshot.8-publish-descriptor' }).signal).toBe('SIGKILL');
    jvsOk(['restore', s1], { cwd: repo.main });
    const r = doctorJson(repo.main, ['--repair-runtime']);
    expect(r.code, r.stdout).toBe(0);
    const crashed = descriptorIds(repo).find((id) => id !== s1 && id !== s2)!;
    expect(worktreeConfig(repo)).toMatchObject({ head_snapshot_id: s1, latest_snapshot_id: crashed });
    expect(fs.readFileSync(path.join(repo.main, 'a.txt'), 'utf8')).toBe('A');
  });
});
