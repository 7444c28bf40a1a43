import fs from 'node:fs';

/** File attributes as the mount reports them; times in nanoseconds since the epoch. */
export interface Attr {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

const WRITE_BITS = 0o222;

/** Attributes of a backing entry; `readOnly` strips every write bit (snapshot trees). */
export function attrOf(st: fs.BigIntStats, readOnly = false): Attr {
  const mode = Number(st.mode);
  return {
    mode: readOnly ? mode & ~WRITE_BITS : mode,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    nlink: Number(st.nlink),
    ino: Number(st.ino),
    rdev: Number(st.rdev),
    blksize: Number(st.blksize),
    blocks: Number(st.blocks),
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

/**
 * Inode numbers of virtual nodes: far above what file systems hand out for real files
 * (the mount reports the backing files' own inode numbers for real entries).
 */
export const VIRTUAL_INO = 2 ** 48;

/** A stable virtual inode number for a name (tag and HEAD links). */
export function virtualIno(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return VIRTUAL_INO + 1024 + h;
}

/** A virtual node (folder, file or link), owned by the mounting user. */
export function virtualAttr(kind: 'dir' | 'file' | 'symlink', perm: number, size: number, timeNs: bigint, ino: number): Attr {
  const type = kind === 'dir' ? fs.constants.S_IFDIR : kind === 'file' ? fs.constants.S_IFREG : fs.constants.S_IFLNK;
  return {
    mode: type | perm,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    size,
    nlink: kind === 'dir' ? 2 : 1,
    ino,
    rdev: 0,
    blksize: 4096,
    blocks: Math.ceil(size / 512),
    atimeNs: timeNs,
    mtimeNs: timeNs,
    ctimeNs: timeNs,
  };
}

export const isDirMode = (mode: number) => (mode & fs.constants.S_IFMT) === fs.constants.S_IFDIR;
