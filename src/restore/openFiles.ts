import fs from 'node:fs';
import path from 'node:path';

export interface OpenFile {
  /** Worktree-relative path. */
  path: string;
  pid: number;
  /** The process's command name (from /proc/<pid>/comm). */
  command: string;
}

/**
 * Files below `root` that other processes hold open, from /proc/<pid>/fd (Linux). Only
 * processes we may inspect are seen (all of them as root, the user's own otherwise);
 * elsewhere the answer is empty. The cost is one readlink per open fd on the machine,
 * no walk of the worktree. Links of files already deleted (" (deleted)") are skipped.
 */
export function openFilesBelow(root: string): OpenFile[] {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  } catch {
    return [];
  }
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const out: OpenFile[] = [];
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to see
    }
    let command: string | undefined;
    const seen = new Set<string>();
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!target.startsWith(prefix) || target.endsWith(' (deleted)') || seen.has(target)) continue;
      seen.add(target);
      command ??= readComm(pid);
      out.push({ path: path.relative(root, target).split(path.sep).join('/'), pid: Number(pid), command });
    }
  }
  return out;
}

function readComm(pid: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}
