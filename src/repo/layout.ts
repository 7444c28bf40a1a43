import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { isPathComponent } from '../format/controlNames.js';

/**
 * The only module that knows where things live inside a repository. Everything
 * else asks for a path by meaning. Layout of format_version 1:
 *
 *   .jvs/format_version, .jvs/repo_id, .jvs/config.yaml, .jvs/index.sqlite
 *   .jvs/worktrees/<name>/config.json
 *   .jvs/snapshots/<id>/ (+ .READY)      .jvs/descriptors/<id>.json
 *   .jvs/intents/<id>.json               .jvs/audit/audit.jsonl
 *   .jvs/gc/<plan>.json  .jvs/gc/tombstones/<id>.json  .jvs/pins/<pin>.json
 *   .jvs/locks/, .jvs/tmp/, .jvs/hooks/  (runtime state of this implementation)
 *   main/                                payload of worktree "main"
 *   worktrees/<name>/                    payload of other worktrees
 */
export const CONTROL_DIR = '.jvs';
export const FORMAT_VERSION = 1;
export const MAIN_WORKTREE = 'main';
export const READY_FILE = '.READY';

/**
 * Every name joined into a path here is one clean component, whatever its source: a
 * name from a tampered control file that slipped past its reader's check fails here
 * instead of leading outside the repository.
 */
function part(name: string): string {
  if (!isPathComponent(name)) {
    throw new JvsError('E_PATH_ESCAPE', `refusing to use ${JSON.stringify(name)} as a name inside the repository: it is not a single path component`, {
      hint: 'a control-plane file holds a damaged name: run `jvs doctor` to find it',
    });
  }
  return name;
}

export class Layout {
  /** `controlDir` overrides where `.jvs/` is, for building a control plane under a staging name. */
  constructor(readonly root: string, private readonly controlDir?: string) {}

  get control(): string { return this.controlDir ?? path.join(this.root, CONTROL_DIR); }
  get formatVersion(): string { return path.join(this.control, 'format_version'); }
  get repoId(): string { return path.join(this.control, 'repo_id'); }
  get configYaml(): string { return path.join(this.control, 'config.yaml'); }
  get indexDb(): string { return path.join(this.control, 'index.sqlite'); }
  get worktreesMeta(): string { return path.join(this.control, 'worktrees'); }
  get snapshots(): string { return path.join(this.control, 'snapshots'); }
  get descriptors(): string { return path.join(this.control, 'descriptors'); }
  get intents(): string { return path.join(this.control, 'intents'); }
  get auditDir(): string { return path.join(this.control, 'audit'); }
  get auditLog(): string { return path.join(this.auditDir, 'audit.jsonl'); }
  get gc(): string { return path.join(this.control, 'gc'); }
  get tombstones(): string { return path.join(this.gc, 'tombstones'); }
  get pins(): string { return path.join(this.control, 'pins'); }
  get locks(): string { return path.join(this.control, 'locks'); }
  get tmp(): string { return path.join(this.control, 'tmp'); }
  get hooks(): string { return path.join(this.control, 'hooks'); }
  get otherWorktreePayloads(): string { return path.join(this.root, 'worktrees'); }

  /** Folders init creates; everything a repository needs before its first snapshot. */
  get skeleton(): string[] {
    return [this.control, this.worktreesMeta, this.snapshots, this.descriptors, this.intents,
      this.auditDir, this.gc, this.tombstones, this.pins, this.locks, this.tmp];
  }

  worktreeConfig(name: string): string { return path.join(this.worktreesMeta, part(name), 'config.json'); }
  worktreeMetaDir(name: string): string { return path.join(this.worktreesMeta, part(name)); }
  payload(name: string): string {
    return name === MAIN_WORKTREE ? path.join(this.root, MAIN_WORKTREE) : path.join(this.otherWorktreePayloads, part(name));
  }
  /**
   * The payload folder of worktree `name`, for commands that read or write inside it
   * (restore, snapshot, fork, status, diff). Worktree roots are resolved here and only
   * here: the name must be one path component, and every folder from the repository
   * root down to the payload must be a real folder, not a symlink (the last may be
   * missing: restore makes it). Anything else is E_PATH_ESCAPE before a file is touched.
   */
  worktreeRoot(name: string): string {
    const escape = (why: string) => new JvsError('E_PATH_ESCAPE', `worktree '${name}': ${why}; JVS never works through it`, {
      hint: 'move the link or folder out of the repository and make the worktree folder a plain folder again (e.g. `mkdir` it, then `jvs restore HEAD`)',
    });
    if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw escape('the name is not a single path component');
    const target = this.payload(name);
    const steps = name === MAIN_WORKTREE ? [target] : [this.otherWorktreePayloads, target];
    for (const p of steps) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && p === target) return target;
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      if (st.isSymbolicLink()) throw escape(`${p} is a symbolic link`);
      if (!st.isDirectory()) throw escape(`${p} is not a folder`);
    }
    return target;
  }
  snapshotDir(id: string): string { return path.join(this.snapshots, part(id)); }
  snapshotTmpDir(id: string): string { return path.join(this.snapshots, `${part(id)}.tmp`); }
  readyFile(id: string): string { return path.join(this.snapshotDir(id), READY_FILE); }
  descriptor(id: string): string { return path.join(this.descriptors, `${part(id)}.json`); }
  descriptorTmp(id: string): string { return path.join(this.descriptors, `${part(id)}.json.tmp`); }
  intent(id: string): string { return path.join(this.intents, `${part(id)}.json`); }
  gcPlan(planId: string): string { return path.join(this.gc, `${part(planId)}.json`); }
  tombstone(id: string): string { return path.join(this.tombstones, `${part(id)}.json`); }
  pin(name: string): string { return path.join(this.pins, `${part(name)}.json`); }
  lockFile(name = 'repo'): string { return path.join(this.locks, part(name)); }
  lockOwner(name = 'repo'): string { return path.join(this.locks, `${part(name)}.owner.json`); }
  tmpPath(name: string): string { return path.join(this.tmp, part(name)); }
  preSnapshotHook(): string { return path.join(this.hooks, 'pre-snapshot'); }
}
