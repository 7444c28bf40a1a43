import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { JvsError, fromSystemError } from '../errors.js';
import { fsyncDir } from '../fsutil/atomic.js';
import { CONTROL_DIR, Layout, MAIN_WORKTREE } from '../repo/layout.js';
import { findRepoRoot } from '../repo/openRepo.js';
import { buildControlPlane, type InitResult } from './initRepo.js';
import { applyTemplate, readTemplate } from './templates.js';

/** The folder entries move through on their way into `main/`; a leftover one means an interrupted adoption. */
const STAGE_PREFIX = '.jvs-adopt-';

export interface AdoptResult extends InitResult {
  /** Top-level entries renamed into the main worktree (nothing is copied). */
  entries_moved: number;
  /** Set when an earlier, interrupted `init --here` was finished. */
  resumed?: boolean;
}

/**
 * `jvs init --here`: make an existing project folder a repository whose main worktree
 * holds the project. Format v1 puts the main worktree's files in `<repo>/main/`, so the
 * folder becomes the repository root and its entries move into `main/` — each by one
 * rename on the same filesystem: nothing is copied or rewritten, every file keeps its
 * inode (open files, hard links, editors' handles and shells standing in subfolders
 * keep working).
 *
 * Order, so that a crash never loses or hides a file: (1) entries move into a stage
 * folder `.jvs-adopt-<rand>/` inside the project, (2) the control plane is built aside
 * and renamed to `.jvs/`, (3) the stage is renamed to `main/`. Until (3) the folder is
 * no repository; running `jvs init --here` again there finishes the job. A failure
 * before (2) moves the entries back.
 */
export function adoptFolder(target: string, opts: { template?: string; force?: boolean } = {}): AdoptResult {
  const root = path.resolve(target);
  const ignoreText = opts.template === undefined ? undefined : readTemplate(opts.template);
  const st = fs.statSync(root, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new JvsError('E_NOT_FOUND', `${root} is not a folder`, { hint: 'cd into the project folder and run `jvs init --here`' });
  if (fs.existsSync(path.join(root, CONTROL_DIR))) {
    if (fs.existsSync(path.join(root, MAIN_WORKTREE)) || !stageOf(root)) {
      throw new JvsError('E_ALREADY_EXISTS', `${root} is already a JVS repository`, { hint: `cd ${root} && jvs info` });
    }
  }
  if (root === path.parse(root).root || root === path.resolve(os.homedir())) {
    throw new JvsError('E_USAGE', `refusing to turn ${root} into a repository: everything in it would move into ${path.join(root, MAIN_WORKTREE)}`, {
      hint: 'run `jvs init --here` inside the project folder itself',
    });
  }
  refuseNesting(root, opts.force);

  const layout = new Layout(root);
  const previous = stageOf(root);
  const stage = previous ?? path.join(root, `${STAGE_PREFIX}${randomBytes(4).toString('hex')}`);
  const moved: string[] = [];
  try {
    // 1. every entry into the stage (a resumed run moves what is left)
    if (!previous) fs.mkdirSync(stage);
    for (const name of fs.readdirSync(root)) {
      if (path.join(root, name) === stage || name === CONTROL_DIR || name === '.jvs.init-tmp') continue;
      fs.renameSync(path.join(root, name), path.join(stage, name));
      moved.push(name);
    }
    fsyncDir(stage);
    fsyncDir(root);
  } catch (e) {
    // Put back what moved: the folder is as it was.
    for (const name of moved.reverse()) {
      try {
        fs.renameSync(path.join(stage, name), path.join(root, name));
      } catch {
        /* left in the stage: a re-run of `jvs init --here` finishes or the user moves it */
      }
    }
    if (!previous) fs.rmSync(stage, { recursive: false, force: true });
    throw fromSystemError(e, `cannot move the project's files into ${layout.payload(MAIN_WORKTREE)}`);
  }
  try {
    // 2. the control plane (kept when a previous run got that far)
    const resumedControl = fs.existsSync(layout.control);
    const made = resumedControl ? undefined : buildControlPlane(layout);
    // 3. the stage becomes main/
    fs.renameSync(stage, layout.payload(MAIN_WORKTREE));
    fsyncDir(root);
    const entries = fs.readdirSync(layout.payload(MAIN_WORKTREE)).length;
    const template = ignoreText !== undefined ? applyTemplate(layout.payload(MAIN_WORKTREE), opts.template!, ignoreText) : undefined;
    return {
      repo_root: root,
      repo_id: made?.repoId ?? fs.readFileSync(layout.repoId, 'utf8').trim(),
      format_version: 1,
      worktree: MAIN_WORKTREE,
      payload: layout.payload(MAIN_WORKTREE),
      ...(template ? { template: opts.template!, template_rules_added: template.added } : {}),
      entries_moved: entries,
      ...(previous ? { resumed: true } : {}),
    };
  } catch (e) {
    throw fromSystemError(e, `adopting ${root} was interrupted; run \`jvs init --here\` there again to finish (your files are in ${stage})`);
  }
}

/** An interrupted adoption's stage folder, if any. */
function stageOf(root: string): string | undefined {
  try {
    const name = fs.readdirSync(root).find((n) => n.startsWith(STAGE_PREFIX));
    return name ? path.join(root, name) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A repository inside another repository's folder would be snapshotted as data of the
 * outer one (its `.jvs/` included) and confuse which repository a command acts on.
 */
export function refuseNesting(root: string, force: boolean | undefined): void {
  const outer = findRepoRoot(path.dirname(root));
  if (!outer || force) return;
  throw new JvsError('E_USAGE', `${root} is inside the JVS repository ${outer}; a repository there would be versioned as files of that one`, {
    hint: 'create it outside that repository, or pass `--force` to nest it anyway',
    details: { outer_repository: outer },
  });
}
