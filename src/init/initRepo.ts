import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { JvsError, fromSystemError } from '../errors.js';
import { formatTimestamp } from '../format/canonicalJson.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import { appendAudit } from '../repo/audit.js';
import { CONTROL_DIR, FORMAT_VERSION, Layout, MAIN_WORKTREE } from '../repo/layout.js';
import { writeWorktreeConfig } from '../repo/worktreeConfig.js';
import { readTemplate } from './templates.js';
import { refuseNesting } from './adoptFolder.js';

export interface InitResult {
  repo_root: string;
  repo_id: string;
  format_version: number;
  worktree: string;
  payload: string;
  /** The `.jvsignore` template written into the main payload, when one was asked for. */
  template?: string;
  /** Rules the template added to the `.jvsignore` (all of them for a new file). */
  template_rules_added?: number;
}

/**
 * Create a repository in `target` (a new or empty folder). The control plane is
 * built in `.jvs.init-tmp/` and renamed into place last, so a crash never leaves a
 * folder that looks like a repository but is not one.
 */
export function initRepo(target: string, opts: { template?: string; force?: boolean } = {}): InitResult {
  const root = path.resolve(target);
  // Read the template first: an unknown name must fail before anything is created.
  const ignoreText = opts.template === undefined ? undefined : readTemplate(opts.template);
  if (fs.existsSync(path.join(root, CONTROL_DIR))) {
    throw new JvsError('E_ALREADY_EXISTS', `${root} is already a JVS repository`, { hint: `cd ${root} && jvs info` });
  }
  if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) {
    throw new JvsError('E_ALREADY_EXISTS', `${root} exists and is not a folder`, { hint: 'choose another name for the repository' });
  }
  if (fs.existsSync(root) && fs.readdirSync(root).length > 0) {
    throw new JvsError('E_ALREADY_EXISTS', `${root} exists and is not empty`, {
      hint: `to version the files already there, run \`jvs init --here\` inside ${root}; otherwise choose a new name`,
    });
  }
  refuseNesting(root, opts.force);
  try {
    fs.mkdirSync(root, { recursive: true });
    const layout = new Layout(root);
    fs.mkdirSync(layout.payload(MAIN_WORKTREE), { recursive: true });
    if (ignoreText !== undefined) writeFileAtomic(path.join(layout.payload(MAIN_WORKTREE), '.jvsignore'), ignoreText);
    const { repoId } = buildControlPlane(layout);
    return {
      repo_root: root,
      repo_id: repoId,
      format_version: FORMAT_VERSION,
      worktree: MAIN_WORKTREE,
      payload: layout.payload(MAIN_WORKTREE),
      ...(opts.template !== undefined ? { template: opts.template } : {}),
    };
  } catch (e) {
    throw fromSystemError(e, `cannot create repository in ${root}`);
  }
}

/**
 * The control plane of a new repository, built in `.jvs.init-tmp/` and renamed to
 * `.jvs/` last, so a crash never leaves a folder that looks like a repository but is
 * not one. The payload folder of `main` is the caller's.
 */
export function buildControlPlane(layout: Layout): { repoId: string } {
  const staging = path.join(layout.root, '.jvs.init-tmp');
  fs.rmSync(staging, { recursive: true, force: true });
  const stageLayout = new Layout(layout.root, staging);
  for (const dir of stageLayout.skeleton) fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(stageLayout.formatVersion, `${FORMAT_VERSION}\n`);
  const repoId = randomUUID();
  writeFileAtomic(stageLayout.repoId, `${repoId}\n`);
  writeWorktreeConfig(stageLayout, { name: MAIN_WORKTREE, created_at: formatTimestamp(new Date()) });
  fs.renameSync(staging, layout.control);
  appendAudit(layout, { event_type: 'repo_init', worktree_name: MAIN_WORKTREE, details: { repo_id: repoId } });
  return { repoId };
}
