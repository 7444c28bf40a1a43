/*
 * current/ and snapshot trees, served in C on libfuse's worker threads.
 *
 * Every operation works on inodes (inodes.c), never on path strings: names are taken
 * relative to the parent inode's fd (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS for
 * lookups, *at() calls with a validated single component for changes), and an inode's
 * own file is reached through its O_PATH fd or its /proc/self/fd magic link (the exact
 * inode, whatever happened to the names above it since).
 *
 * Invariants:
 *   - Snapshot trees answer every change with EROFS and show no write bits; their
 *     folder's .READY marker is invisible. They never change, so their entries and
 *     attributes carry long timeouts and their pages stay cached across opens.
 *   - Every change to current/ runs under the write gate held shared.
 *   - With jvs_switch_creds, each request runs with the caller's fsuid/fsgid and groups
 *     on this thread, so the backing file system checks permissions and ownership as
 *     for the caller (on top of the kernel's default_permissions).
 *   - With the writeback cache, a file opened write-only is opened read-write below
 *     (the kernel reads to fill partial pages) and O_APPEND is left to the kernel.
 */
#include "jvs_fuse.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

pthread_rwlock_t jvs_gate;
double jvs_current_timeout = 1.0;
double jvs_snapshot_timeout = 86400.0;
int jvs_switch_creds = 0;
int jvs_writeback = 0;
int jvs_xattrs = 0;

/* The fixed virtual nodeids C needs to know (TypeScript assigns the same ones). */
#define JVS_INO_SNAPSHOTS 3

/* The loop thread takes the gate itself around a change it serves inline (session.c), so
 * ops must not take it again there: a second read lock behind a waiting writer would
 * wait for ever on a writer-preferring lock. */
__thread int jvs_gate_held;
static void gate_in(void) { if (!jvs_gate_held) pthread_rwlock_rdlock(&jvs_gate); }
static void gate_out(void) { if (!jvs_gate_held) pthread_rwlock_unlock(&jvs_gate); }
#define GATED(stmt) do { gate_in(); stmt; gate_out(); } while (0)

/* --- credentials --------------------------------------------------------------- */

typedef struct { int switched; } creds_t;

static void creds_begin(fuse_req_t req, creds_t *c) {
  c->switched = 0;
  if (!jvs_switch_creds) return;
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  if (ctx->uid == 0 && ctx->gid == 0) return;
  gid_t groups[64];
  int n = fuse_req_getgroups(req, 64, groups);
  if (n < 0 || n > 64) n = 0;
  /* Raw syscalls: glibc's setgroups would change every thread of the process. */
  syscall(SYS_setgroups, n, groups);
  setfsgid(ctx->gid);
  setfsuid(ctx->uid);
  c->switched = 1;
}

static void creds_end(creds_t *c) {
  if (!c->switched) return;
  setfsuid(0);
  setfsgid(0);
  syscall(SYS_setgroups, 0, NULL);
}

/* --- helpers --------------------------------------------------------------------- */

static int valid_name(const char *name) {
  return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static void proc_path(char *out, int fd) {
  snprintf(out, 32, "/proc/self/fd/%d", fd);
}

static double timeout_of(int area) {
  return area == JVS_AREA_SNAPSHOT ? jvs_snapshot_timeout : jvs_current_timeout;
}

static void strip(int area, struct stat *st) {
  if (area == JVS_AREA_SNAPSHOT) st->st_mode &= ~0222;
}

static int is_ready_name(jvs_inode *parent, const char *name) {
  return parent && parent->top && parent->area == JVS_AREA_SNAPSHOT && strcmp(name, ".READY") == 0;
}

/* The snapshot folder names C serves itself: <13 digits>-<8 hex> (ids, never tags). */
static int is_id(const char *s) {
  if (strlen(s) != 22 || s[13] != '-') return 0;
  for (int i = 0; i < 13; i++) if (s[i] < '0' || s[i] > '9') return 0;
  for (int i = 14; i < 22; i++) if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

static void reply_entry(fuse_req_t req, jvs_inode *in, struct stat *st) {
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  strip(in->area, st);
  e.ino = in->nodeid;
  e.attr = *st;
  e.attr_timeout = e.entry_timeout = timeout_of(in->area);
  if (fuse_reply_entry(req, &e) == -ENOENT) jvs_inode_forget(in->nodeid, 1); /* interrupted */
}

/* Look up name below parent and reply with the entry (or the error). */
static void lookup_reply(fuse_req_t req, jvs_inode *parent, int area, const char *name) {
  if (is_ready_name(parent, name)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st;
  int err = 0;
  jvs_inode *in = jvs_inode_lookup(parent, area, name, &st, &err);
  if (!in) {
    fuse_reply_err(req, err);
    return;
  }
  reply_entry(req, in, &st);
}

/* Pin a C inode's fd, or reply with the error and return -1. */
#define PIN(in, fd) \
  int fd = jvs_inode_pin_fd(in); \
  if (fd < 0) { fuse_reply_err(req, -fd); return; }

/* The C inode for `ino`; virtual inodes go to TypeScript (`js`), else fail `err`. */
#define C_INODE(in, ino, js) \
  jvs_inode *in = jvs_inode_get(ino); \
  if (!in) { js; return; }

#define RO_CHECK(in) if ((in)->area == JVS_AREA_SNAPSHOT) { fuse_reply_err(req, EROFS); return; }

/* --- lookup and attributes ------------------------------------------------------ */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (parent == FUSE_ROOT_ID && strcmp(name, "current") == 0) {
    lookup_reply(req, NULL, JVS_AREA_CURRENT, "");
    return;
  }
  if (parent == JVS_INO_SNAPSHOTS && is_id(name)) {
    lookup_reply(req, NULL, JVS_AREA_SNAPSHOT, name);
    return;
  }
  C_INODE(p, parent, jvs_virtual_dispatch(req, "lookup", parent, name, NULL, 0, 0, 0, NULL))
  lookup_reply(req, p, p->area, name);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  jvs_inode_forget(ino, n);
  fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f) {
  for (size_t i = 0; i < count; i++) jvs_inode_forget(f[i].ino, f[i].nlookup);
  fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  C_INODE(in, ino, jvs_virtual_dispatch(req, "getattr", ino, NULL, NULL, 0, 0, 0, NULL))
  PIN(in, fd)
  struct stat st;
  int r = fstat(fd, &st);
  int e = errno;
  jvs_inode_unpin(in);
  if (r < 0) {
    fuse_reply_err(req, e);
    return;
  }
  strip(in->area, &st);
  fuse_reply_attr(req, &st, timeout_of(in->area));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  C_INODE(in, ino, jvs_virtual_dispatch(req, "setattr", ino, NULL, NULL, 0, (uint64_t) to_set, (uint64_t) attr->st_size, fi))
  RO_CHECK(in)
  PIN(in, fd)
  char pp[32];
  proc_path(pp, fd);
  creds_t c;
  creds_begin(req, &c);
  int r = 0;
  gate_in();
  if (!r && (to_set & FUSE_SET_ATTR_MODE)) r = chmod(pp, attr->st_mode & 07777);
  if (!r && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
    uid_t u = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t) -1;
    gid_t g = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t) -1;
    r = fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  if (!r && (to_set & FUSE_SET_ATTR_SIZE)) r = fi ? ftruncate((int) fi->fh, attr->st_size) : truncate(pp, attr->st_size);
  if (!r && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
    struct timespec tv[2];
    tv[0].tv_sec = tv[1].tv_sec = 0;
    tv[0].tv_nsec = tv[1].tv_nsec = UTIME_OMIT;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) tv[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME) tv[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) tv[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME) tv[1] = attr->st_mtim;
    if (in->type == S_IFLNK) {
      /* A link's own times: by name in its parent, never following it. */
      jvs_inode *p = in->parent;
      int pfd = p ? jvs_inode_pin_fd(p) : -EINVAL;
      if (pfd < 0) { errno = -pfd; r = -1; }
      else {
        r = utimensat(pfd, in->name, tv, AT_SYMLINK_NOFOLLOW);
        jvs_inode_unpin(p);
      }
    } else if (fi) {
      r = futimens((int) fi->fh, tv);
    } else {
      r = utimensat(AT_FDCWD, pp, tv, 0);
    }
  }
  int e = errno;
  gate_out();
  creds_end(&c);
  struct stat st;
  if (!r) { r = fstat(fd, &st); e = errno; }
  jvs_inode_unpin(in);
  if (r < 0) fuse_reply_err(req, e);
  else fuse_reply_attr(req, &st, timeout_of(in->area));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  C_INODE(in, ino, jvs_virtual_dispatch(req, "readlink", ino, NULL, NULL, 0, 0, 0, NULL))
  PIN(in, fd)
  char buf[PATH_MAX + 1];
  ssize_t n = readlinkat(fd, "", buf, PATH_MAX);
  int e = errno;
  jvs_inode_unpin(in);
  if (n < 0) {
    fuse_reply_err(req, e);
    return;
  }
  buf[n] = '\0';
  fuse_reply_readlink(req, buf);
}

/* --- making and removing names ---------------------------------------------------- */

/* A name change in a C folder of current/: `fn` runs with the parent fd, gated, as the caller. */
#define NAME_OP(parent, name, make) \
  C_INODE(p, parent, fuse_reply_err(req, EROFS)) \
  RO_CHECK(p) \
  if (!valid_name(name)) { fuse_reply_err(req, EINVAL); return; } \
  PIN(p, pfd) \
  creds_t c; \
  creds_begin(req, &c); \
  int r; \
  GATED(r = (make)); \
  int e = errno; \
  if (r == 0 && !jvs_switch_creds) own(req, pfd, name); \
  creds_end(&c); \
  jvs_inode_unpin(p);

/* Without credential switching, files made for another user still belong to them. */
static void own(fuse_req_t req, int pfd, const char *name) {
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  if (geteuid() == 0 && ctx->uid != 0) {
    if (fchownat(pfd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW) < 0) { /* best effort */ }
  }
}

static void made(fuse_req_t req, jvs_inode *p, const char *name, int r, int e) {
  if (r < 0) fuse_reply_err(req, e);
  else lookup_reply(req, p, p->area, name);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  NAME_OP(parent, name, mkdirat(pfd, name, mode))
  made(req, p, name, r, e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  NAME_OP(parent, name, mknodat(pfd, name, mode, rdev))
  made(req, p, name, r, e);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
  NAME_OP(parent, name, symlinkat(target, pfd, name))
  made(req, p, name, r, e);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  NAME_OP(parent, name, unlinkat(pfd, name, 0))
  fuse_reply_err(req, r < 0 ? e : 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  NAME_OP(parent, name, unlinkat(pfd, name, AT_REMOVEDIR))
  fuse_reply_err(req, r < 0 ? e : 0);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  jvs_inode *in = jvs_inode_get(ino);
  jvs_inode *np = jvs_inode_get(newparent);
  if (!in || !np) {
    fuse_reply_err(req, (in || np) ? EXDEV : EROFS);
    return;
  }
  if (in->area != np->area) { fuse_reply_err(req, EXDEV); return; }
  RO_CHECK(np)
  if (!valid_name(newname)) { fuse_reply_err(req, EINVAL); return; }
  PIN(in, fd)
  int pfd = jvs_inode_pin_fd(np);
  if (pfd < 0) {
    jvs_inode_unpin(in);
    fuse_reply_err(req, -pfd);
    return;
  }
  char pp[32];
  proc_path(pp, fd);
  creds_t c;
  creds_begin(req, &c);
  int r;
  GATED(r = linkat(AT_FDCWD, pp, pfd, newname, AT_SYMLINK_FOLLOW));
  int e = errno;
  creds_end(&c);
  jvs_inode_unpin(np);
  jvs_inode_unpin(in);
  made(req, np, newname, r, e);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  jvs_inode *p = jvs_inode_get(parent);
  jvs_inode *np = jvs_inode_get(newparent);
  if (!p || !np) {
    fuse_reply_err(req, (p || np) ? EXDEV : EROFS);
    return;
  }
  if (p->area != np->area) { fuse_reply_err(req, EXDEV); return; }
  RO_CHECK(p)
  if (!valid_name(name) || !valid_name(newname)) { fuse_reply_err(req, EINVAL); return; }
  PIN(p, pfd)
  int npfd = jvs_inode_pin_fd(np);
  if (npfd < 0) {
    jvs_inode_unpin(p);
    fuse_reply_err(req, -npfd);
    return;
  }
  creds_t c;
  creds_begin(req, &c);
  struct stat st;
  int known = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
  int r;
  GATED(r = renameat2(pfd, name, npfd, newname, flags));
  int e = errno;
  creds_end(&c);
  if (r == 0 && known) jvs_inode_moved(st.st_dev, st.st_ino, p->area, np, newname);
  jvs_inode_unpin(np);
  jvs_inode_unpin(p);
  fuse_reply_err(req, r < 0 ? e : 0);
}

/* --- files -------------------------------------------------------------------------- */

static int adjust_flags(int flags) {
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
  if (jvs_writeback) {
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
    flags &= ~O_APPEND;
  }
  return flags | O_CLOEXEC;
}

static void set_open_flags(jvs_inode *in, struct fuse_file_info *fi) {
  if (in->area == JVS_AREA_SNAPSHOT) fi->keep_cache = 1; /* the file never changes */
  fi->noflush = 1;                                        /* nothing to do at close */
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  C_INODE(in, ino, jvs_virtual_dispatch(req, "open", ino, NULL, NULL, 0, (uint64_t) fi->flags, 0, fi))
  int writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  if (writing) RO_CHECK(in)
  PIN(in, fd)
  char pp[32];
  proc_path(pp, fd);
  creds_t c;
  creds_begin(req, &c);
  int flags = adjust_flags(fi->flags);
  int nfd;
  if (fi->flags & O_TRUNC) GATED(nfd = open(pp, flags));
  else nfd = open(pp, flags);
  /* Write-only callers may lack read permission for the writeback cache's upgrade. */
  if (nfd < 0 && errno == EACCES && (fi->flags & O_ACCMODE) == O_WRONLY && (flags & O_ACCMODE) == O_RDWR) {
    flags = (flags & ~O_ACCMODE) | O_WRONLY;
    if (fi->flags & O_TRUNC) GATED(nfd = open(pp, flags));
    else nfd = open(pp, flags);
  }
  int e = errno;
  creds_end(&c);
  jvs_inode_unpin(in);
  if (nfd < 0) {
    fuse_reply_err(req, e);
    return;
  }
  fi->fh = (uint64_t) nfd;
  set_open_flags(in, fi);
  fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  C_INODE(p, parent, fuse_reply_err(req, EROFS))
  RO_CHECK(p)
  if (!valid_name(name)) { fuse_reply_err(req, EINVAL); return; }
  PIN(p, pfd)
  creds_t c;
  creds_begin(req, &c);
  struct open_how how = { .flags = (uint64_t) (adjust_flags(fi->flags) | O_CREAT | O_NOFOLLOW | (fi->flags & O_EXCL)), .mode = mode & 07777, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
  int fd;
  GATED(fd = (int) syscall(SYS_openat2, pfd, name, &how, sizeof(how)));
  int e = errno;
  if (fd >= 0 && !jvs_switch_creds) own(req, pfd, name);
  creds_end(&c);
  jvs_inode_unpin(p);
  if (fd < 0) {
    fuse_reply_err(req, e == ELOOP || e == EXDEV ? EACCES : e);
    return;
  }
  struct stat st;
  int err = 0;
  jvs_inode *in = jvs_inode_lookup(p, p->area, name, &st, &err);
  if (!in) {
    close(fd);
    fuse_reply_err(req, err);
    return;
  }
  struct fuse_entry_param en;
  memset(&en, 0, sizeof(en));
  en.ino = in->nodeid;
  en.attr = st;
  en.attr_timeout = en.entry_timeout = timeout_of(in->area);
  fi->fh = (uint64_t) fd;
  set_open_flags(in, fi);
  if (fuse_reply_create(req, &en, fi) == -ENOENT) {
    close(fd);
    jvs_inode_forget(in->nodeid, 1);
  }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (ino < JVS_C_INO_BASE) {
    jvs_virtual_dispatch(req, "read", ino, NULL, NULL, 0, (uint64_t) size, (uint64_t) off, fi);
    return;
  }
  struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  buf.buf[0].fd = (int) fi->fh;
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off, struct fuse_file_info *fi) {
  if (ino < JVS_C_INO_BASE) {
    /* Control files: the data goes to TypeScript (copied there before we return). */
    size_t size = fuse_buf_size(in);
    char *data = malloc(size ? size : 1);
    struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
    dst.buf[0].mem = data;
    ssize_t n = fuse_buf_copy(&dst, in, 0);
    if (n < 0) {
      free(data);
      fuse_reply_err(req, (int) -n);
      return;
    }
    jvs_virtual_dispatch(req, "write", ino, NULL, data, (size_t) n, (uint64_t) off, 0, fi);
    free(data);
    return;
  }
  struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
  out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  out.buf[0].fd = (int) fi->fh;
  out.buf[0].pos = off;
  ssize_t n;
  GATED(n = fuse_buf_copy(&out, in, 0));
  if (n < 0) fuse_reply_err(req, (int) -n);
  else fuse_reply_write(req, (size_t) n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  /* A control-file message written without its final newline runs at close. */
  if (ino < JVS_C_INO_BASE && fi->fh != 0) jvs_virtual_dispatch(req, "flush", ino, NULL, NULL, 0, 0, 0, fi);
  else fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (ino < JVS_C_INO_BASE) {
    jvs_virtual_dispatch(req, "release", ino, NULL, NULL, 0, 0, 0, fi);
    return;
  }
  close((int) fi->fh);
  fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  if (ino < JVS_C_INO_BASE) {
    fuse_reply_err(req, 0);
    return;
  }
  int r = datasync ? fdatasync((int) fi->fh) : fsync((int) fi->fh);
  fuse_reply_err(req, r < 0 ? errno : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  C_INODE(in, ino, fuse_reply_err(req, EOPNOTSUPP))
  RO_CHECK(in)
  int r;
  GATED(r = fallocate((int) fi->fh, mode, off, len));
  fuse_reply_err(req, r < 0 ? errno : 0);
}

/* --- folders --------------------------------------------------------------------------- */

typedef struct {
  DIR *dp;
  off_t offset; /* where dp stands; -1: unknown (seek before reading) */
} jvs_dir;

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  jvs_inode *in = jvs_inode_get(ino);
  if (!in) {
    fi->fh = 0; /* virtual folders: listed by TypeScript on each readdir */
    fuse_reply_open(req, fi);
    return;
  }
  PIN(in, fd)
  creds_t c;
  creds_begin(req, &c);
  int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int e = errno;
  creds_end(&c);
  jvs_inode_unpin(in);
  if (dfd < 0) {
    fuse_reply_err(req, e);
    return;
  }
  jvs_dir *d = calloc(1, sizeof(*d));
  d->dp = fdopendir(dfd);
  d->offset = 0;
  fi->fh = (uint64_t) (uintptr_t) d;
  if (in->area == JVS_AREA_SNAPSHOT) {
    fi->keep_cache = 1;
    fi->cache_readdir = 1; /* the listing never changes */
  }
  fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, int plus) {
  C_INODE(in, ino, jvs_virtual_dispatch(req, plus ? "readdirplus" : "readdir", ino, NULL, NULL, 0, (uint64_t) size, (uint64_t) off, fi))
  jvs_dir *d = (jvs_dir *) (uintptr_t) fi->fh;
  char *buf = malloc(size);
  size_t used = 0;
  if (d->offset != off) {
    seekdir(d->dp, off);
    d->offset = off;
  }
  int hide_ready = in->top && in->area == JVS_AREA_SNAPSHOT;
  for (;;) {
    errno = 0;
    struct dirent *ent = readdir(d->dp);
    if (!ent) break;
    const char *name = ent->d_name;
    off_t next = ent->d_off;
    if (hide_ready && strcmp(name, ".READY") == 0) {
      d->offset = next;
      continue;
    }
    size_t n;
    int dots = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
    if (!plus || dots) {
      struct stat st;
      memset(&st, 0, sizeof(st));
      st.st_ino = ent->d_ino;
      st.st_mode = (mode_t) DTTOIF(ent->d_type);
      if (!plus) n = fuse_add_direntry(req, buf + used, size - used, name, &st, next);
      else {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.attr = st;
        n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, next);
      }
      if (n > size - used) { d->offset = -1; break; }
    } else {
      struct stat st;
      int err = 0;
      jvs_inode *child = jvs_inode_lookup(in, in->area, name, &st, &err);
      if (!child) { d->offset = next; continue; } /* gone meanwhile, or not ours to show */
      struct fuse_entry_param e;
      memset(&e, 0, sizeof(e));
      strip(child->area, &st);
      e.ino = child->nodeid;
      e.attr = st;
      e.attr_timeout = e.entry_timeout = timeout_of(child->area);
      n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, next);
      if (n > size - used) {
        jvs_inode_forget(child->nodeid, 1);
        d->offset = -1;
        break;
      }
    }
    used += n;
    d->offset = next;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  jvs_dir *d = (jvs_dir *) (uintptr_t) fi->fh;
  if (d) {
    closedir(d->dp);
    free(d);
  }
  fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  jvs_dir *d = (jvs_dir *) (uintptr_t) fi->fh;
  int r = d ? fsync(dirfd(d->dp)) : 0;
  fuse_reply_err(req, r < 0 ? errno : 0);
}

/* access(2) reaches us only without default_permissions (session.c): the backing file
 * system answers as the daemon, which is the mounting user (or root for root). */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  jvs_inode *in = jvs_inode_get(ino);
  if (!in) {
    fuse_reply_err(req, 0); /* virtual inodes: their modes already say what opening allows */
    return;
  }
  if ((mask & W_OK) && in->area == JVS_AREA_SNAPSHOT) {
    fuse_reply_err(req, EROFS);
    return;
  }
  PIN(in, fd)
  char pp[32];
  proc_path(pp, fd);
  int r = in->type == S_IFLNK ? 0 : faccessat(AT_FDCWD, pp, mask, AT_EACCESS);
  int e = errno;
  jvs_inode_unpin(in);
  fuse_reply_err(req, r < 0 ? e : 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  jvs_inode *in = jvs_inode_get(ino);
  int fd = in && in->area == JVS_AREA_SNAPSHOT ? jvs_snap_root_fd() : jvs_cur_root_fd();
  struct statvfs sv;
  if (fstatvfs(fd, &sv) < 0) fuse_reply_err(req, errno);
  else fuse_reply_statfs(req, &sv);
}

/* --- extended attributes ------------------------------------------------------------ */

/*
 * Through the inode's /proc/self/fd link (the exact inode: a symlink's own attributes,
 * never its target's), as the caller. Snapshot trees read, never change (EROFS);
 * virtual inodes (the root, .jvs/, control files) keep none.
 */

/*
 * What a caller other than root may touch. The daemon keeps CAP_SYS_ADMIN and
 * CAP_SETFCAP while it runs a request with the caller's fsuid (only the file-system
 * capabilities go), so the kernel would let any --allow-other user write trusted.* or
 * security.capability (a file capability is a way to root) and read trusted.*. For
 * them: user.* and POSIX ACLs (the kernel checks ownership by the fsuid), trusted.*
 * invisible, as the kernel itself treats an unprivileged caller.
 */
static int caller_is_root(fuse_req_t req) {
  return fuse_req_ctx(req)->uid == 0;
}

static int may_change(fuse_req_t req, const char *name) {
  return caller_is_root(req) || strncmp(name, "user.", 5) == 0 || strncmp(name, "system.posix_acl_", 17) == 0;
}

static int hidden(fuse_req_t req, const char *name) {
  return !caller_is_root(req) && strncmp(name, "trusted.", 8) == 0;
}

/* Replies to a get or list that produced n bytes into buf for a caller offering `size`. */
static void reply_xattr(fuse_req_t req, ssize_t n, int e, const char *buf, size_t size) {
  if (n < 0) fuse_reply_err(req, e);
  else if (size == 0) fuse_reply_xattr(req, (size_t) n);
  else fuse_reply_buf(req, buf, (size_t) n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  C_INODE(in, ino, fuse_reply_err(req, EOPNOTSUPP))
  if (hidden(req, name)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  PIN(in, fd)
  char pp[32];
  proc_path(pp, fd);
  char *buf = size ? malloc(size) : NULL;
  creds_t c;
  creds_begin(req, &c);
  ssize_t n = size && !buf ? (errno = ENOMEM, -1) : getxattr(pp, name, buf, size);
  int e = errno;
  creds_end(&c);
  jvs_inode_unpin(in);
  reply_xattr(req, n, e, buf, size);
  free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  C_INODE(in, ino, fuse_reply_err(req, EOPNOTSUPP))
  PIN(in, fd)
  char pp[32];
  proc_path(pp, fd);
  /* The whole list (XATTR_LIST_MAX), so names hidden from the caller can be left out of
     both the list and its length. */
  char *buf = malloc(65536);
  creds_t c;
  creds_begin(req, &c);
  ssize_t n = buf ? listxattr(pp, buf, 65536) : (errno = ENOMEM, -1);
  int e = errno;
  creds_end(&c);
  jvs_inode_unpin(in);
  if (n > 0 && !caller_is_root(req)) {
    ssize_t kept = 0;
    for (ssize_t k = 0; k < n;) {
      size_t len = strlen(buf + k) + 1;
      if (!hidden(req, buf + k)) {
        memmove(buf + kept, buf + k, len);
        kept += (ssize_t) len;
      }
      k += (ssize_t) len;
    }
    n = kept;
  }
  if (n >= 0 && size && (size_t) n > size) {
    n = -1;
    e = ERANGE;
  }
  reply_xattr(req, n, e, buf, size);
  free(buf);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  C_INODE(in, ino, fuse_reply_err(req, EOPNOTSUPP))
  RO_CHECK(in)
  if (!may_change(req, name)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  PIN(in, fd)
  char pp[32];
  proc_path(pp, fd);
  creds_t c;
  creds_begin(req, &c);
  int r;
  GATED(r = setxattr(pp, name, value, size, flags));
  int e = errno;
  creds_end(&c);
  jvs_inode_unpin(in);
  fuse_reply_err(req, r < 0 ? e : 0);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  C_INODE(in, ino, fuse_reply_err(req, EOPNOTSUPP))
  RO_CHECK(in)
  if (!may_change(req, name)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  PIN(in, fd)
  char pp[32];
  proc_path(pp, fd);
  creds_t c;
  creds_begin(req, &c);
  int r;
  GATED(r = removexattr(pp, name));
  int e = errno;
  creds_end(&c);
  jvs_inode_unpin(in);
  fuse_reply_err(req, r < 0 ? e : 0);
}

/* --- FUSE over io_uring ------------------------------------------------------------
 *
 * With io_uring (libfuse 3.18, session.c) libfuse's ring threads call these ops, one
 * thread per queue, and while a ring thread serves a request it holds its queue's lock,
 * which a reply from another thread (TypeScript's, for virtual inodes) also takes. So a
 * ring thread must never wait for the write gate: a change that finds it held (a
 * control-file snapshot or restore runs on the JS thread) would keep the queue's lock
 * while the JS thread, holding the gate, waits for that lock to reply to a request of
 * the same queue. Such a change, and the ops that may wait long on the disk (fsync,
 * fsyncdir), go to the pool instead. A ring request's arguments live in its ring entry
 * until the reply, so the pool gets them as they are; only what libfuse keeps on its
 * stack (file info, attributes, the buffer vector) is copied. Requests read from
 * /dev/fuse (every other loop) never come here as ring requests. */
#ifdef FUSE_CAP_OVER_IO_URING
enum { D_SETATTR, D_MKDIR, D_MKNOD, D_SYMLINK, D_UNLINK, D_RMDIR, D_LINK, D_RENAME, D_OPEN, D_CREATE, D_WRITE, D_FSYNC, D_FALLOCATE, D_FSYNCDIR, D_SETXATTR, D_REMOVEXATTR };

typedef struct {
  int op;
  fuse_req_t req;
  fuse_ino_t ino, ino2;
  const char *name, *name2;
  mode_t mode;
  dev_t rdev;
  unsigned int flags;
  int n;        /* to_set, datasync, fallocate mode, xattr flags */
  off_t off, len;
  size_t size;
  struct stat attr;
  struct fuse_file_info fi;
  int has_fi;
  struct fuse_bufvec buf;
} ring_job;

unsigned long jvs_ring_requests, jvs_ring_deferred;

/* On a pool thread: the op takes the gate itself where it changes something (GATED), as
 * on the pool of the /dev/fuse loop, so what changes nothing (a read-only open, say)
 * goes on while a cut holds the gate. */
static void ring_run(void *arg) {
  ring_job *j = arg;
  struct fuse_file_info *fi = j->has_fi ? &j->fi : NULL;
  switch (j->op) {
  case D_SETATTR: op_setattr(j->req, j->ino, &j->attr, j->n, fi); break;
  case D_MKDIR: op_mkdir(j->req, j->ino, j->name, j->mode); break;
  case D_MKNOD: op_mknod(j->req, j->ino, j->name, j->mode, j->rdev); break;
  case D_SYMLINK: op_symlink(j->req, j->name2, j->ino, j->name); break;
  case D_UNLINK: op_unlink(j->req, j->ino, j->name); break;
  case D_RMDIR: op_rmdir(j->req, j->ino, j->name); break;
  case D_LINK: op_link(j->req, j->ino, j->ino2, j->name2); break;
  case D_RENAME: op_rename(j->req, j->ino, j->name, j->ino2, j->name2, j->flags); break;
  case D_OPEN: op_open(j->req, j->ino, fi); break;
  case D_CREATE: op_create(j->req, j->ino, j->name, j->mode, fi); break;
  case D_WRITE: op_write_buf(j->req, j->ino, &j->buf, j->off, fi); break;
  case D_FSYNC: op_fsync(j->req, j->ino, j->n, fi); break;
  case D_FALLOCATE: op_fallocate(j->req, j->ino, j->n, j->off, j->len, fi); break;
  case D_FSYNCDIR: op_fsyncdir(j->req, j->ino, j->n, fi); break;
  case D_SETXATTR: op_setxattr(j->req, j->ino, j->name, j->name2, j->size, j->n); break;
  case D_REMOVEXATTR: op_removexattr(j->req, j->ino, j->name); break;
  }
  free(j);
}

/* In a ring thread: take the gate without waiting (1: serve here, call ring_leave after),
 * or hand the request to the pool (0: done here). Other requests: 1, nothing taken. */
static __thread int ring_took;
static int ring_enter(fuse_req_t req, ring_job *tmpl, int always_defer) {
  ring_took = 0;
  if (!fuse_req_is_uring(req)) return 1;
  __atomic_add_fetch(&jvs_ring_requests, 1, __ATOMIC_RELAXED);
  if (!always_defer && !jvs_gate_held && pthread_rwlock_tryrdlock(&jvs_gate) == 0) {
    jvs_gate_held = 1;
    ring_took = 1;
    return 1;
  }
  ring_job *j = malloc(sizeof(*j));
  if (j) {
    *j = *tmpl;
    j->req = req;
  }
  if (!j || jvs_pool_run(ring_run, j) < 0) {
    free(j);
    return 1; /* no memory: serve it here, waiting for the gate as other loops do */
  }
  __atomic_add_fetch(&jvs_ring_deferred, 1, __ATOMIC_RELAXED);
  return 0;
}
static void ring_leave(void) {
  if (!ring_took) return;
  ring_took = 0;
  jvs_gate_held = 0;
  pthread_rwlock_unlock(&jvs_gate);
}

#define RING(op_, always, fill, call) do {                     \
    ring_job t_ = { .op = op_ };                                 \
    fill;                                                        \
    if (!ring_enter(req, &t_, always)) return;                   \
    call;                                                        \
    ring_leave();                                                \
  } while (0)
#define FI_COPY do { if (fi) { t_.fi = *fi; t_.has_fi = 1; } } while (0)

static void r_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  RING(D_SETATTR, 0, (t_.ino = ino, t_.attr = *attr, t_.n = to_set, ({ FI_COPY; })), op_setattr(req, ino, attr, to_set, fi));
}
static void r_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  RING(D_MKDIR, 0, (t_.ino = parent, t_.name = name, t_.mode = mode), op_mkdir(req, parent, name, mode));
}
static void r_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  RING(D_MKNOD, 0, (t_.ino = parent, t_.name = name, t_.mode = mode, t_.rdev = rdev), op_mknod(req, parent, name, mode, rdev));
}
static void r_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
  RING(D_SYMLINK, 0, (t_.ino = parent, t_.name = name, t_.name2 = target), op_symlink(req, target, parent, name));
}
static void r_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  RING(D_UNLINK, 0, (t_.ino = parent, t_.name = name), op_unlink(req, parent, name));
}
static void r_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  RING(D_RMDIR, 0, (t_.ino = parent, t_.name = name), op_rmdir(req, parent, name));
}
static void r_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  RING(D_LINK, 0, (t_.ino = ino, t_.ino2 = newparent, t_.name2 = newname), op_link(req, ino, newparent, newname));
}
static void r_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  RING(D_RENAME, 0, (t_.ino = parent, t_.name = name, t_.ino2 = newparent, t_.name2 = newname, t_.flags = flags), op_rename(req, parent, name, newparent, newname, flags));
}
static void r_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  RING(D_OPEN, 0, (t_.ino = ino, ({ FI_COPY; })), op_open(req, ino, fi));
}
static void r_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  RING(D_CREATE, 0, (t_.ino = parent, t_.name = name, t_.mode = mode, ({ FI_COPY; })), op_create(req, parent, name, mode, fi));
}
static void r_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off, struct fuse_file_info *fi) {
  /* A ring request's data is one buffer in its entry; anything else is served here. */
  if (in->count != 1) {
    op_write_buf(req, ino, in, off, fi);
    return;
  }
  RING(D_WRITE, 0, (t_.ino = ino, t_.buf = *in, t_.off = off, ({ FI_COPY; })), op_write_buf(req, ino, in, off, fi));
}
static void r_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  RING(D_FSYNC, 1, (t_.ino = ino, t_.n = datasync, ({ FI_COPY; })), op_fsync(req, ino, datasync, fi));
}
static void r_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  RING(D_FALLOCATE, 1, (t_.ino = ino, t_.n = mode, t_.off = off, t_.len = len, ({ FI_COPY; })), op_fallocate(req, ino, mode, off, len, fi));
}
static void r_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  RING(D_FSYNCDIR, 1, (t_.ino = ino, t_.n = datasync, ({ FI_COPY; })), op_fsyncdir(req, ino, datasync, fi));
}
static void r_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  RING(D_SETXATTR, 0, (t_.ino = ino, t_.name = name, t_.name2 = value, t_.size = size, t_.n = flags), op_setxattr(req, ino, name, value, size, flags));
}
static void r_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  RING(D_REMOVEXATTR, 0, (t_.ino = ino, t_.name = name), op_removexattr(req, ino, name));
}
#define OP(name) r_##name
#else
unsigned long jvs_ring_requests, jvs_ring_deferred;
#define OP(name) op_##name
#endif

void jvs_ops_install(struct fuse_lowlevel_ops *ops) {
  ops->lookup = op_lookup;
  ops->forget = op_forget;
  ops->forget_multi = op_forget_multi;
  ops->getattr = op_getattr;
  ops->setattr = OP(setattr);
  ops->readlink = op_readlink;
  ops->mkdir = OP(mkdir);
  ops->mknod = OP(mknod);
  ops->symlink = OP(symlink);
  ops->unlink = OP(unlink);
  ops->rmdir = OP(rmdir);
  ops->link = OP(link);
  ops->rename = OP(rename);
  ops->open = OP(open);
  ops->create = OP(create);
  ops->read = op_read;
  ops->write_buf = OP(write_buf);
  ops->flush = op_flush;
  ops->release = op_release;
  ops->fsync = OP(fsync);
  ops->fallocate = OP(fallocate);
  ops->opendir = op_opendir;
  ops->readdir = op_readdir;
  ops->readdirplus = op_readdirplus;
  ops->releasedir = op_releasedir;
  ops->fsyncdir = OP(fsyncdir);
  ops->statfs = op_statfs;
  ops->access = op_access;
  /* Only when asked: once the server answers getxattr, the kernel asks it for
     security.capability before every write(2) (measured: 1,200 getxattr requests for
     1,200 writes), one more round trip each. Unregistered, the kernel answers
     EOPNOTSUPP itself after the first ENOSYS. */
  if (jvs_xattrs) {
    ops->getxattr = op_getxattr;
    ops->listxattr = op_listxattr;
    ops->setxattr = OP(setxattr);
    ops->removexattr = OP(removexattr);
  }
}
