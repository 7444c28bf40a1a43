/*
 * JVS fast path for the mount, compiled into JVS's patched build of fuse-native
 * (scripts/build-fuse.mjs includes this file into fuse-native.c).
 *
 * Every FUSE request crossing into JavaScript costs a round trip through the JS
 * thread (~55-90 us, one request at a time). The two areas that carry bulk traffic are
 * plain passthroughs and need no JavaScript at all:
 *   /current/...                      -> the served worktree's payload folder
 *   /.jvs/snapshots/<id>/...          -> the snapshot's folder, read-only
 * so they are served here, on libfuse's worker threads, with direct syscalls. Everything
 * else (the mount root, the snapshot name table with tags and HEAD, control files)
 * still goes to JavaScript. src/fuse/ keeps the same semantics in TypeScript (used
 * when the fast path is off: JVS_MOUNT_JS_PASSTHROUGH=1, and by the unit tests).
 *
 * The consistent cut of a control-file snapshot: every mutation served here holds a
 * read lock of `jvs_gate`; the JS snapshot takes the write lock (jvs_gate_hold) before
 * it materialises and drops it after (jvs_gate_release), both on the JS main thread.
 * The lock prefers writers, so a stream of writes cannot starve a snapshot.
 *
 * Invariants: no symlink is followed here (lstat, O_NOFOLLOW, AT_SYMLINK_NOFOLLOW,
 * lchown); the kernel resolves the mount's links itself. Paths never contain "." or
 * ".." components (the kernel resolves them). Snapshot trees answer EROFS to every
 * change and report no write bits; their .READY marker is hidden.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#define JVS_AREA_JS 0
#define JVS_AREA_CURRENT 1
#define JVS_AREA_SNAPSHOT 2

#define JVS_F_READY 1      /* the path is <id>/.READY */
#define JVS_F_SNAP_ROOT 2  /* the path is the snapshot folder itself */
#define JVS_F_CUR_ROOT 4   /* the path is /current itself */

static int jvs_fp_enabled = 0;
static char jvs_cur_root[PATH_MAX];
static char jvs_snap_root[PATH_MAX];
static pthread_rwlock_t jvs_gate;
static struct fuse_operations jvs_js;

static int jvs_is_id (const char *s, size_t n) {
  if (n != 22 || s[13] != '-') return 0;
  for (int i = 0; i < 13; i++) if (!isdigit((unsigned char) s[i])) return 0;
  for (int i = 14; i < 22; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
  }
  return 1;
}

/* Which area serves `p`; for the C areas `out` receives the backing path. */
static int jvs_route (const char *p, char *out, int *flags) {
  static const char SN[] = "/.jvs/snapshots/";
  *flags = 0;
  if (!jvs_fp_enabled) return JVS_AREA_JS;
  if (strncmp(p, "/current", 8) == 0 && (p[8] == '\0' || p[8] == '/')) {
    if (p[8] == '\0') *flags |= JVS_F_CUR_ROOT;
    if (snprintf(out, PATH_MAX, "%s%s", jvs_cur_root, p + 8) >= PATH_MAX) return -ENAMETOOLONG;
    return JVS_AREA_CURRENT;
  }
  if (strncmp(p, SN, sizeof(SN) - 1) == 0) {
    const char *name = p + sizeof(SN) - 1;
    const char *slash = strchr(name, '/');
    size_t n = slash ? (size_t) (slash - name) : strlen(name);
    if (!jvs_is_id(name, n)) return JVS_AREA_JS;
    if (!slash) *flags |= JVS_F_SNAP_ROOT;
    else if (strcmp(slash, "/.READY") == 0) *flags |= JVS_F_READY;
    if (snprintf(out, PATH_MAX, "%s/%s", jvs_snap_root, name) >= PATH_MAX) return -ENAMETOOLONG;
    return JVS_AREA_SNAPSHOT;
  }
  return JVS_AREA_JS;
}

#define JVS_GATE(expr) ({ pthread_rwlock_rdlock(&jvs_gate); int jvs_r_ = (expr); pthread_rwlock_unlock(&jvs_gate); jvs_r_; })
#define JVS_SYS(expr) ((expr) < 0 ? -errno : 0)

/* Route `path`; JS areas call `js` (or fail ENOSYS when JS does not implement it). */
#define JVS_ROUTE(path, jsfn, ...) \
  char b[PATH_MAX]; \
  int fl; \
  int area = jvs_route(path, b, &fl); \
  if (area < 0) return area; \
  if (area == JVS_AREA_JS) return jvs_js.jsfn ? jvs_js.jsfn(__VA_ARGS__) : -ENOSYS; \
  if (fl & JVS_F_READY) return -ENOENT;

/* Files made for another user through --allow-other belong to that user. */
static void jvs_own (const char *b) {
  struct fuse_context *c = fuse_get_context();
  if (geteuid() == 0 && c != NULL && c->uid != 0) {
    if (lchown(b, c->uid, c->gid) < 0) { /* keep the entry; ownership is best effort */ }
  }
}

static int jvs_getattr (const char *path, struct stat *st) {
  JVS_ROUTE(path, getattr, path, st)
  if (lstat(b, st) < 0) return -errno;
  if (area == JVS_AREA_SNAPSHOT) st->st_mode &= ~0222;
  return 0;
}

static int jvs_fgetattr (const char *path, struct stat *st, struct fuse_file_info *fi) {
  JVS_ROUTE(path, fgetattr, path, st, fi)
  if (fstat((int) fi->fh, st) < 0) return -errno;
  if (area == JVS_AREA_SNAPSHOT) st->st_mode &= ~0222;
  return 0;
}

static int jvs_readlink (const char *path, char *buf, size_t size) {
  JVS_ROUTE(path, readlink, path, buf, size)
  ssize_t n = readlink(b, buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

static int jvs_readdir (const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi) {
  JVS_ROUTE(path, readdir, path, buf, filler, off, fi)
  DIR *d = opendir(b);
  if (d == NULL) return -errno;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if ((fl & JVS_F_SNAP_ROOT) && strcmp(e->d_name, ".READY") == 0) continue;
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_ino = e->d_ino;
    st.st_mode = (mode_t) DTTOIF(e->d_type);
    if (filler(buf, e->d_name, &st, 0)) break;
  }
  closedir(d);
  return 0;
}

static int jvs_open (const char *path, struct fuse_file_info *fi) {
  JVS_ROUTE(path, open, path, fi)
  int fd;
  if (area == JVS_AREA_SNAPSHOT) {
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) return -EROFS;
    fd = open(b, O_RDONLY | O_NOFOLLOW);
    /* Files below an id never change: the kernel may keep their pages across opens. */
    fi->keep_cache = 1;
  } else {
    int flags = (fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY)) | O_NOFOLLOW;
    fd = (flags & O_TRUNC) ? JVS_GATE(open(b, flags)) : open(b, flags);
  }
  if (fd < 0) return -errno;
  fi->fh = (uint64_t) fd;
  return 0;
}

static int jvs_create (const char *path, mode_t mode, struct fuse_file_info *fi) {
  JVS_ROUTE(path, create, path, mode, fi)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  int fd = JVS_GATE(open(b, fi->flags | O_CREAT | O_NOFOLLOW, mode));
  if (fd < 0) return -errno;
  jvs_own(b);
  fi->fh = (uint64_t) fd;
  return 0;
}

static int jvs_read (const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  JVS_ROUTE(path, read, path, buf, size, off, fi)
  ssize_t n = pread((int) fi->fh, buf, size, off);
  return n < 0 ? -errno : (int) n;
}

static int jvs_write (const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  JVS_ROUTE(path, write, path, buf, size, off, fi)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  pthread_rwlock_rdlock(&jvs_gate);
  ssize_t n = pwrite((int) fi->fh, buf, size, off);
  int err = errno;
  pthread_rwlock_unlock(&jvs_gate);
  return n < 0 ? -err : (int) n;
}

static int jvs_release (const char *path, struct fuse_file_info *fi) {
  JVS_ROUTE(path, release, path, fi)
  close((int) fi->fh);
  return 0;
}

static int jvs_flush (const char *path, struct fuse_file_info *fi) {
  JVS_ROUTE(path, flush, path, fi)
  return 0;
}

static int jvs_fsync (const char *path, int datasync, struct fuse_file_info *fi) {
  JVS_ROUTE(path, fsync, path, datasync, fi)
  return JVS_SYS(datasync ? fdatasync((int) fi->fh) : fsync((int) fi->fh));
}

static int jvs_truncate (const char *path, off_t size) {
  JVS_ROUTE(path, truncate, path, size)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  return JVS_GATE(JVS_SYS(truncate(b, size)));
}

static int jvs_ftruncate (const char *path, off_t size, struct fuse_file_info *fi) {
  JVS_ROUTE(path, ftruncate, path, size, fi)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  return JVS_GATE(JVS_SYS(ftruncate((int) fi->fh, size)));
}

static int jvs_utimens (const char *path, const struct timespec tv[2]) {
  JVS_ROUTE(path, utimens, path, tv)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  return JVS_GATE(JVS_SYS(utimensat(AT_FDCWD, b, tv, AT_SYMLINK_NOFOLLOW)));
}

static int jvs_chmod (const char *path, mode_t mode) {
  JVS_ROUTE(path, chmod, path, mode)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  return JVS_GATE(JVS_SYS(chmod(b, mode)));
}

static int jvs_chown (const char *path, uid_t uid, gid_t gid) {
  JVS_ROUTE(path, chown, path, uid, gid)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  return JVS_GATE(JVS_SYS(lchown(b, uid, gid)));
}

static int jvs_unlink (const char *path) {
  JVS_ROUTE(path, unlink, path)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  return JVS_GATE(JVS_SYS(unlink(b)));
}

static int jvs_rmdir (const char *path) {
  JVS_ROUTE(path, rmdir, path)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  if (fl & JVS_F_CUR_ROOT) return -EBUSY;
  return JVS_GATE(JVS_SYS(rmdir(b)));
}

static int jvs_mkdir (const char *path, mode_t mode) {
  JVS_ROUTE(path, mkdir, path, mode)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  int r = JVS_GATE(JVS_SYS(mkdir(b, mode)));
  if (r == 0) jvs_own(b);
  return r;
}

static int jvs_mknod (const char *path, mode_t mode, dev_t dev) {
  JVS_ROUTE(path, mknod, path, mode, dev)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  int r = JVS_GATE(JVS_SYS(mknod(b, mode, dev)));
  if (r == 0) jvs_own(b);
  return r;
}

/* symlink(target, linkpath): only the new link's path is routed. */
static int jvs_symlink (const char *target, const char *linkpath) {
  JVS_ROUTE(linkpath, symlink, target, linkpath)
  if (area == JVS_AREA_SNAPSHOT) return -EROFS;
  int r = JVS_GATE(JVS_SYS(symlink(target, b)));
  if (r == 0) jvs_own(b);
  return r;
}

/* Two-path operations stay inside current/; across areas they fail as the JS tree does. */
static int jvs_two (const char *from, const char *to, int is_link) {
  char bf[PATH_MAX], bt[PATH_MAX];
  int ff, ft;
  int af = jvs_route(from, bf, &ff);
  int at = jvs_route(to, bt, &ft);
  if (af < 0) return af;
  if (at < 0) return at;
  if (af == JVS_AREA_JS && at == JVS_AREA_JS) {
    if (is_link) return jvs_js.link ? jvs_js.link(from, to) : -ENOSYS;
    return jvs_js.rename ? jvs_js.rename(from, to) : -ENOSYS;
  }
  if (af == JVS_AREA_SNAPSHOT || at == JVS_AREA_SNAPSHOT) return (af == JVS_AREA_CURRENT || at == JVS_AREA_CURRENT) ? -EXDEV : -EROFS;
  if (af != JVS_AREA_CURRENT || at != JVS_AREA_CURRENT) return -EXDEV;
  if ((ff | ft) & JVS_F_CUR_ROOT) return -EBUSY;
  return JVS_GATE(JVS_SYS(is_link ? link(bf, bt) : rename(bf, bt)));
}

static int jvs_rename (const char *from, const char *to) {
  return jvs_two(from, to, 0);
}

static int jvs_link (const char *from, const char *to) {
  return jvs_two(from, to, 1);
}

static int jvs_statfs (const char *path, struct statvfs *sv) {
  JVS_ROUTE(path, statfs, path, sv)
  return JVS_SYS(statvfs(area == JVS_AREA_SNAPSHOT ? jvs_snap_root : jvs_cur_root, sv));
}

/* Wrap every path operation; the JS implementations stay reachable for JS areas. */
static void jvs_fastpath_install (struct fuse_operations *ops) {
  jvs_js = *ops;
  ops->getattr = jvs_getattr;
  ops->fgetattr = jvs_fgetattr;
  ops->readlink = jvs_readlink;
  ops->readdir = jvs_readdir;
  ops->open = jvs_open;
  ops->create = jvs_create;
  ops->read = jvs_read;
  ops->write = jvs_write;
  ops->release = jvs_release;
  ops->flush = jvs_flush;
  ops->fsync = jvs_fsync;
  ops->truncate = jvs_truncate;
  ops->ftruncate = jvs_ftruncate;
  ops->utimens = jvs_utimens;
  ops->chmod = jvs_chmod;
  ops->chown = jvs_chown;
  ops->unlink = jvs_unlink;
  ops->rmdir = jvs_rmdir;
  ops->mkdir = jvs_mkdir;
  ops->mknod = jvs_mknod;
  ops->symlink = jvs_symlink;
  ops->rename = jvs_rename;
  ops->link = jvs_link;
  ops->statfs = jvs_statfs;
  ops->flag_utime_omit_ok = 1;
}

/*
 * fuse_mount() receives the /dev/fuse descriptor (and, with auto_unmount, keeps a socket
 * to fusermount) without FD_CLOEXEC. Children (the pre-snapshot hook) would inherit them
 * and keep a dead daemon's connection alive: requests then hang instead of failing and
 * auto_unmount never fires. Mark every descriptor fuse_mount() opened close-on-exec.
 */
#define JVS_FD_SCAN 4096
static void jvs_fds_open (unsigned char *map) {
  for (int fd = 0; fd < JVS_FD_SCAN; fd++) map[fd] = fcntl(fd, F_GETFD) != -1;
}

static void jvs_cloexec_new (const unsigned char *before) {
  for (int fd = 3; fd < JVS_FD_SCAN; fd++) {
    if (before[fd]) continue;
    int f = fcntl(fd, F_GETFD);
    if (f != -1) fcntl(fd, F_SETFD, f | FD_CLOEXEC);
  }
}

static void jvs_fastpath_init (void) {
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&jvs_gate, &a);
  pthread_rwlockattr_destroy(&a);
}

/* jvs_fastpath_configure(currentRoot, snapshotsRoot): serve those areas in C. */
NAPI_METHOD(jvs_fastpath_configure) {
  NAPI_ARGV(2)
  NAPI_ARGV_UTF8(cur, PATH_MAX, 0)
  NAPI_ARGV_UTF8(snap, PATH_MAX, 1)
  snprintf(jvs_cur_root, PATH_MAX, "%s", cur);
  snprintf(jvs_snap_root, PATH_MAX, "%s", snap);
  jvs_fp_enabled = 1;
  return NULL;
}

/* Hold every mutation served here (waits for running ones); JS main thread only. */
NAPI_METHOD(jvs_gate_hold) {
  pthread_rwlock_wrlock(&jvs_gate);
  return NULL;
}

NAPI_METHOD(jvs_gate_release) {
  pthread_rwlock_unlock(&jvs_gate);
  return NULL;
}
