import fs from 'node:fs';
import path from 'node:path';
import { native } from '../native/native.js';

export interface OpenFile {
  /** Worktree-relative path. */
  path: string;
  pid: number;
  /** The process's command name (from /proc/<pid>/comm). */
  command: string;
}

/** A scan of open files running in the background (the addon's thread); wait() gives its answer. */
export interface OpenFileScan {
  wait(): OpenFile[];
}

/**
 * Files below `root` that other processes hold open, from /proc/<pid>/fd (Linux). Only
 * processes we may inspect are seen (all of them as root, the user's own otherwise);
 * elsewhere the answer is empty. The cost is one readlink per open fd on the machine,
 * no walk of the worktree. Links of files already deleted (" (deleted)") are skipped.
 * With the addon the scan runs on its own thread from now until wait().
 */
export function startOpenFileScan(root: string): OpenFileScan {
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const n = native();
  if (n?.openFilesStart && n.openFilesWait) {
    const handle = n.openFilesStart(prefix);
    const wait = n.openFilesWait;
    return { wait: () => wait(handle).map((o) => ({ path: relOf(prefix, o.target), pid: o.pid, command: o.command })) };
  }
  return { wait: () => scanInProcess(prefix) };
}

export function openFilesBelow(root: string): OpenFile[] {
  return startOpenFileScan(root).wait();
}

const relOf = (prefix: string, target: string) => target.slice(prefix.length).split(path.sep).join('/');

function scanInProcess(prefix: string): OpenFile[] {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  } catch {
    return [];
  }
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
      out.push({ path: relOf(prefix, target), pid: Number(pid), command });
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
