import fs from 'node:fs';
import path from 'node:path';
import { native } from '../native/native.js';
import { attrOf, type Attr } from './attrs.js';

/** A time as utimensat takes it; nsec may be UTIME_NOW or UTIME_OMIT. */
export interface TimeSpec {
  sec: number;
  nsec: number;
}
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

const { O_CREAT, O_EXCL, O_NOCTTY, O_NOFOLLOW, O_RDWR } = fs.constants;

/**
 * `current/`: every operation on the served worktree's payload folder, by path relative
 * to it. Links are handled as links (lstat, lchown, O_NOFOLLOW, utimensat without
 * following); the kernel resolves symlinks of the mount itself. Calls are synchronous:
 * requests are serialised on the JS thread anyway, and a local syscall costs less than
 * a hop through the libuv pool (DESIGN section 6 measures the per-request cost).
 */
export class Passthrough {
  constructor(readonly root: string) {}

  abs(rel: string): string {
    return rel ? path.join(this.root, rel) : this.root;
  }

  getattr(rel: string): Attr {
    return attrOf(fs.lstatSync(this.abs(rel), { bigint: true }));
  }
  fgetattr(fd: number): Attr {
    return attrOf(fs.fstatSync(fd, { bigint: true }));
  }
  readdir(rel: string): string[] {
    return fs.readdirSync(this.abs(rel));
  }
  readlink(rel: string): string {
    return fs.readlinkSync(this.abs(rel));
  }
  open(rel: string, flags: number): number {
    return fs.openSync(this.abs(rel), (flags & ~(O_CREAT | O_EXCL | O_NOCTTY)) | O_NOFOLLOW);
  }
  create(rel: string, mode: number): number {
    return fs.openSync(this.abs(rel), O_CREAT | O_RDWR | O_NOFOLLOW, mode & 0o7777);
  }
  read(fd: number, buf: Buffer, len: number, pos: number): number {
    return fs.readSync(fd, buf, 0, len, pos);
  }
  write(fd: number, buf: Buffer, len: number, pos: number): number {
    return fs.writeSync(fd, buf, 0, len, pos);
  }
  truncate(rel: string, size: number): void {
    fs.truncateSync(this.abs(rel), size);
  }
  ftruncate(fd: number, size: number): void {
    fs.ftruncateSync(fd, size);
  }
  fsync(fd: number, datasync: boolean): void {
    if (datasync) fs.fdatasyncSync(fd);
    else fs.fsyncSync(fd);
  }
  close(fd: number): void {
    fs.closeSync(fd);
  }
  chmod(rel: string, mode: number): void {
    fs.chmodSync(this.abs(rel), mode & 0o7777);
  }
  chown(rel: string, uid: number, gid: number): void {
    // (uid_t)-1 means "leave unchanged"; it arrives as 0xffffffff.
    fs.lchownSync(this.abs(rel), uid === 0xffffffff ? -1 : uid, gid === 0xffffffff ? -1 : gid);
  }
  utimens(rel: string, atime: TimeSpec, mtime: TimeSpec): void {
    const p = this.abs(rel);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    let old: fs.BigIntStats | undefined;
    const pick = (t: TimeSpec, which: 'atimeNs' | 'mtimeNs'): bigint => {
      if (t.nsec === UTIME_NOW) return nowNs;
      if (t.nsec === UTIME_OMIT) return (old ??= fs.lstatSync(p, { bigint: true }))[which];
      return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
    };
    const a = pick(atime, 'atimeNs');
    const m = pick(mtime, 'mtimeNs');
    const addon = native();
    if (addon) addon.lutimesNs(p, a, m);
    else fs.lutimesSync(p, Number(a) / 1e9, Number(m) / 1e9);
  }
  unlink(rel: string): void {
    fs.unlinkSync(this.abs(rel));
  }
  rename(from: string, to: string): void {
    fs.renameSync(this.abs(from), this.abs(to));
  }
  link(existing: string, created: string): void {
    fs.linkSync(this.abs(existing), this.abs(created));
  }
  symlink(target: string, created: string): void {
    fs.symlinkSync(target, this.abs(created));
  }
  mkdir(rel: string, mode: number): void {
    fs.mkdirSync(this.abs(rel), { mode: mode & 0o7777 });
  }
  rmdir(rel: string): void {
    fs.rmdirSync(this.abs(rel));
  }
  statfs(): fs.StatsFs {
    return fs.statfsSync(this.root);
  }
}
