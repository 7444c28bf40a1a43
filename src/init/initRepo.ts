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

export interface InitResult {
  repo_root: string;
  repo_id: string;
  format_version: number;
  worktree: string;
  payload: string;
  /** The `.jvsignore` template written into the main payload, when one was asked for. */
  template?: string;
}

/**
 * Create a repository in `target` (a new or empty folder). The control plane is
 * built in `.jvs.init-tmp/` and renamed into place last, so a crash never leaves a
 * folder that looks like a repository but is not one.
 */
export function initRepo(target: string, opts: { template?: string } = {}): InitResult {
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
      hint: 'choose a new name, or move the files into <repo>/main/ after `jvs init` in an empty folder',
    });
  }
  try {
    fs.mkdirSync(root, { recursive: true });
    const staging = path.join(root, '.jvs.init-tmp');
    fs.rmSync(staging, { recursive: true, force: true });
    const layout = new Layout(root);
    const stageLayout = new Layout(root, staging);
    for (const dir of stageLayout.skeleton) fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(stageLayout.formatVersion, `${FORMAT_VERSION}\n`);
    const repoId = randomUUID();
    writeFileAtomic(stageLayout.repoId, `${repoId}\n`);
    writeWorktreeConfig(stageLayout, { name: MAIN_WORKTREE, created_at: formatTimestamp(new Date()) });
    fs.mkdirSync(layout.payload(MAIN_WORKTREE), { recursive: true });
    if (ignoreText !== undefined) writeFileAtomic(path.join(layout.payload(MAIN_WORKTREE), '.jvsignore'), ignoreText);
    fs.renameSync(staging, layout.control);
    appendAudit(layout, { event_type: 'repo_init', worktree_name: MAIN_WORKTREE, details: { repo_id: repoId } });
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
