/*
 * jvs_beneath: changes inside a tree made only through a directory fd of its root.
 *
 * A restore changes the worktree while people (or agents) may be writing into it. A name
 * joined onto the worktree's path is resolved again by the kernel at every call, so a
 * folder swapped for a symlink between two calls would send a removal, a rename or a
 * chmod outside the repository. Here every operation resolves the parent folder of its
 * entry with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the root's fd (or a
 * walk of O_NOFOLLOW opens on kernels without openat2) and then acts on the last
 * component with an *at() call that does not follow it:
 *
 *   openRoot(path)                   fd of a folder (O_NOFOLLOW: a symlink is refused);
 *                                    the caller closes it (fs.closeSync)
 *   openBeneath(root, rel, flags)    fd of one file of the tree (a path for root, which
 *                                    is opened O_PATH | O_DIRECTORY | O_NOFOLLOW) for
 *                                    JavaScript that reads small files there
 *                                    (`.jvsignore`): no symlink is followed, the last
 *                                    component included (ELOOP); `flags` are open(2)
 *                                    flags without O_CREAT (O_NONBLOCK keeps a FIFO from
 *                                    blocking the open); the caller closes the fd
 *   removeBeneath(fd, rel)           unlink, or remove a folder's whole content through
 *                                    fds and then the folder; true when something was
 *                                    there (a missing entry is not an error)
 *   mkdirBeneath(fd, rel, mode)
 *   renameBeneath(fdA, a, fdB, b)    renameat of a (below root fdA) to b (below fdB;
 *                                    the same fd for a rename inside one tree)
 *   symlinkBeneath(fd, target, rel)
 *   linkBeneath(fdA, a, fdB, b)      a hard link at b of the file a
 *   metaBeneath(fd, rel, what, mode, uid, gid, atimeNs, mtimeNs)
 *                                    what: 1 owner (best effort, like applyMetadata),
 *                                    2 permission bits (never through a symlink:
 *                                    fchmodat2 with AT_SYMLINK_NOFOLLOW, or an O_PATH fd
 *                                    on kernels before 6.6), 4 times
 *
 * Names are relative ("a/b"), in the byte encoding of jvs_names.c. Errors are thrown as
 * Error objects with `code` (errno name), `syscall` and `path` (the rel), as Node's fs
 * does: a symlink met on the way is ELOOP, `..` or an absolute name EXDEV.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jvs_native.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

int jvs_open_beneath(int root, const char *rel, int flags, unsigned int mode) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS) return (int)fd;
  if (rel[0] == '/' || rel[0] == 0) {
    errno = EXDEV;
    return -1;
  }
  char part[4096];
  int dir = root;
  const char *p = rel;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 0 || len >= sizeof part || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
      if (dir != root) close(dir);
      errno = len >= sizeof part ? ENAMETOOLONG : EXDEV;
      return -1;
    }
    memcpy(part, p, len);
    part[len] = 0;
    /* Folders on the way as O_PATH: they are only ever an openat base (no read right needed). */
    int next = slash ? openat(dir, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                     : openat(dir, part, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    int e = errno;
    if (dir != root) close(dir);
    if (next < 0) {
      errno = e == ENOTDIR && slash ? ELOOP : e; /* a symlinked folder on the way */
      return -1;
    }
    if (!slash) return next;
    dir = next;
    p = slash + 1;
  }
}

/*
 * The folder holding `rel`'s last component, opened beneath root (root itself for a
 * top-level name, returned as is: close only what differs from root), and that
 * component in *base. A name that is empty, ".", ".." or ends in "/" is EXDEV.
 */
static int parent_of(int root, char *rel, const char **base) {
  char *slash = strrchr(rel, '/');
  const char *b = slash ? slash + 1 : rel;
  if (!*b || strcmp(b, ".") == 0 || strcmp(b, "..") == 0) {
    errno = EXDEV;
    return -1;
  }
  *base = b;
  if (!slash) return root;
  *slash = 0;
  int fd = jvs_open_beneath(root, rel, O_RDONLY | O_DIRECTORY, 0);
  /* A folder on the way that is no longer one (O_NOFOLLOW | O_DIRECTORY on a symlink
     gives ENOTDIR): the tree was changed under us, reported as a symlink met (ELOOP). */
  if (fd < 0 && errno == ENOTDIR) errno = ELOOP;
  *slash = '/';
  return fd;
}

static void done_parent(int root, int dir) {
  if (dir >= 0 && dir != root) close(dir);
}

static napi_value throw_at(napi_env env, const char *syscall, const char *rel, int e) {
  char msg[4400];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", jvs_errno_name(e), strerror(e), syscall, rel);
  napi_value code, text, err, v;
  napi_create_string_utf8(env, jvs_errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_set_named_property(env, err, "code", code);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  if (jvs_create_name(env, rel, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, err, "path", v);
  napi_throw(env, err);
  return NULL;
}

/* Arguments: up to 8; *fd from argv[0] when want_fd. Returns argc, or -1 (exception pending). */
static int args(napi_env env, napi_callback_info info, napi_value *argv, size_t max, int *fd) {
  size_t argc = max;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (fd) {
    if (argc < 1 || napi_get_value_int32(env, argv[0], fd) != napi_ok) {
      napi_throw_type_error(env, NULL, "expected a directory fd");
      return -1;
    }
  }
  return (int)argc;
}

static napi_value open_beneath_js(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t flags = 0;
  if (args(env, info, argv, 3, NULL) != 3 || napi_get_value_int32(env, argv[2], &flags) != napi_ok) {
    napi_throw_type_error(env, NULL, "openBeneath(root, rel, flags)");
    return NULL;
  }
  char *root = jvs_get_path(env, argv[0], NULL);
  if (!root) return NULL;
  char *rel = jvs_get_path(env, argv[1], NULL);
  if (!rel) {
    free(root);
    return NULL;
  }
  napi_value out = NULL;
  int dir = open(root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) {
    throw_at(env, "open", root, errno);
  } else {
    int fd = jvs_open_beneath(dir, rel, flags & ~O_CREAT, 0);
    int e = errno;
    close(dir);
    if (fd < 0) throw_at(env, "openat2", rel, e);
    else napi_create_int32(env, fd, &out);
  }
  free(root);
  free(rel);
  return out;
}

static napi_value open_root(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (args(env, info, argv, 1, NULL) < 1) return NULL;
  char *p = jvs_get_path(env, argv[0], NULL);
  if (!p) return NULL;
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    napi_value r = throw_at(env, "open", p, errno);
    free(p);
    return r;
  }
  free(p);
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

/* Everything inside the folder `dir` (an fd this call owns and closes), depth first, never following a link. */
static int empty_folder(int dir) {
  DIR *d = fdopendir(dir);
  if (!d) {
    int e = errno;
    close(dir);
    errno = e;
    return -1;
  }
  struct dirent *de;
  int rc = 0;
  while ((errno = 0, de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]))) continue;
    int is_dir = de->d_type == DT_DIR;
    if (de->d_type == DT_UNKNOWN) {
      struct stat st;
      if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        rc = -1;
        break;
      }
      is_dir = S_ISDIR(st.st_mode);
    }
    if (is_dir) {
      int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        if (errno == ENOENT) continue;
        if (errno != ENOTDIR && errno != ELOOP) { /* replaced by a file or link meanwhile: unlinked below */
          rc = -1;
          break;
        }
      } else if (empty_folder(sub) != 0 || unlinkat(dirfd(d), n, AT_REMOVEDIR) != 0) {
        if (errno == ENOENT) continue;
        rc = -1;
        break;
      } else continue;
    }
    if (unlinkat(dirfd(d), n, 0) != 0 && errno != ENOENT) {
      rc = -1;
      break;
    }
  }
  if (rc == 0 && errno != 0) rc = -1;
  int e = errno;
  closedir(d);
  errno = e;
  return rc;
}

/* Removes `base` in the folder `dir` whatever it is; 1 removed, 0 absent, -1 errno. */
static int remove_entry(int dir, const char *base) {
  for (int tries = 0; tries < 4; tries++) {
    if (unlinkat(dir, base, 0) == 0) return 1;
    if (errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return -1; /* EPERM: Linux's answer for unlink of a folder */
    int sub = openat(dir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      if (errno == ENOENT) return 0;
      if (errno == ENOTDIR || errno == ELOOP) continue; /* swapped for a file or link: unlink it */
      return -1;
    }
    if (empty_folder(sub) != 0) return -1;
    if (unlinkat(dir, base, AT_REMOVEDIR) == 0) return 1;
    if (errno == ENOENT) return 0;
    if (errno != ENOTEMPTY && errno != ENOTDIR) return -1; /* something was written meanwhile: again */
  }
  errno = ENOTEMPTY;
  return -1;
}

static napi_value remove_beneath(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int root;
  if (args(env, info, argv, 2, &root) < 2) return NULL;
  char *rel = jvs_get_path(env, argv[1], NULL);
  if (!rel) return NULL;
  const char *base;
  int dir = parent_of(root, rel, &base);
  int rc = -1;
  if (dir >= 0) rc = remove_entry(dir, base);
  else if (errno == ENOENT) rc = 0; /* its folder is gone already */
  int e = errno;
  done_parent(root, dir);
  napi_value out = NULL;
  if (rc < 0) throw_at(env, "unlinkat", rel, e);
  else napi_get_boolean(env, rc == 1, &out);
  free(rel);
  return out;
}

static napi_value mkdir_beneath(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int root;
  uint32_t mode = 0700;
  if (args(env, info, argv, 3, &root) < 2) return NULL;
  napi_get_value_uint32(env, argv[2], &mode);
  char *rel = jvs_get_path(env, argv[1], NULL);
  if (!rel) return NULL;
  const char *base;
  int dir = parent_of(root, rel, &base);
  int rc = dir >= 0 ? mkdirat(dir, base, (mode_t)mode) : -1;
  int e = errno;
  done_parent(root, dir);
  if (rc != 0) throw_at(env, dir >= 0 ? "mkdirat" : "openat2", rel, e);
  free(rel);
  return NULL;
}

/* Two names, each below its own root fd (argv: rootA, a, rootB, b), resolved to (folder fd, base); calls op. */
static napi_value two_names(napi_env env, napi_callback_info info, const char *what, int (*op)(int, const char *, int, const char *)) {
  napi_value argv[4];
  int ra, rb;
  if (args(env, info, argv, 4, &ra) < 4) return NULL;
  if (napi_get_value_int32(env, argv[2], &rb) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a directory fd");
    return NULL;
  }
  char *a = jvs_get_path(env, argv[1], NULL);
  if (!a) return NULL;
  char *b = jvs_get_path(env, argv[3], NULL);
  if (!b) {
    free(a);
    return NULL;
  }
  const char *ba, *bb;
  int da = parent_of(ra, a, &ba);
  int db = da >= 0 ? parent_of(rb, b, &bb) : -1;
  int rc = db >= 0 ? op(da, ba, db, bb) : -1;
  int e = errno;
  done_parent(ra, da);
  done_parent(rb, db);
  if (rc != 0) throw_at(env, db >= 0 ? what : "openat2", db >= 0 || da < 0 ? a : b, e);
  free(a);
  free(b);
  return NULL;
}

static int op_rename(int da, const char *a, int db, const char *b) {
  return renameat(da, a, db, b);
}

static int op_link(int da, const char *a, int db, const char *b) {
  return linkat(da, a, db, b, 0); /* no AT_SYMLINK_FOLLOW: a link to a symlink, never through it */
}

static napi_value rename_beneath(napi_env env, napi_callback_info info) {
  return two_names(env, info, "renameat", op_rename);
}

static napi_value link_beneath(napi_env env, napi_callback_info info) {
  return two_names(env, info, "linkat", op_link);
}

static napi_value symlink_beneath(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int root;
  if (args(env, info, argv, 3, &root) < 3) return NULL;
  char *target = jvs_get_path(env, argv[1], NULL);
  if (!target) return NULL;
  char *rel = jvs_get_path(env, argv[2], NULL);
  if (!rel) {
    free(target);
    return NULL;
  }
  const char *base;
  int dir = parent_of(root, rel, &base);
  int rc = dir >= 0 ? symlinkat(target, dir, base) : -1;
  int e = errno;
  done_parent(root, dir);
  if (rc != 0) throw_at(env, dir >= 0 ? "symlinkat" : "openat2", rel, e);
  free(target);
  free(rel);
  return NULL;
}

static int64_t big(napi_env env, napi_value v) {
  int64_t x = 0;
  bool lossless;
  if (napi_get_value_bigint_int64(env, v, &x, &lossless) != napi_ok) napi_get_value_int64(env, v, &x);
  return x;
}

/* chmod of `base` in `dir` that never follows a symlink there (a symlink: nothing to do). */
static int chmod_nofollow(int dir, const char *base, mode_t mode) {
  if (syscall(SYS_fchmodat2, dir, base, mode, AT_SYMLINK_NOFOLLOW) == 0) return 0;
  if (errno == EOPNOTSUPP) return 0; /* it is a symlink (Linux has no symlink modes) */
  if (errno != ENOSYS) return -1;
  int fd = openat(dir, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  int rc = fstat(fd, &st);
  if (rc == 0 && !S_ISLNK(st.st_mode)) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    rc = chmod(proc, mode);
  }
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

static napi_value meta_beneath(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  int root;
  if (args(env, info, argv, 8, &root) < 8) return NULL;
  uint32_t what = 0, mode = 0;
  napi_get_value_uint32(env, argv[2], &what);
  napi_get_value_uint32(env, argv[3], &mode);
  int64_t uid = big(env, argv[4]), gid = big(env, argv[5]), atime = big(env, argv[6]), mtime = big(env, argv[7]);
  char *rel = jvs_get_path(env, argv[1], NULL);
  if (!rel) return NULL;
  const char *base;
  const char *failed = NULL;
  int dir = parent_of(root, rel, &base);
  if (dir < 0) failed = "openat2";
  /* Owner first: chown clears set-id bits, which the mode then puts back. Best effort. */
  if (!failed && (what & 1)) (void)fchownat(dir, base, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
  if (!failed && (what & 2) && chmod_nofollow(dir, base, (mode_t)(mode & 07777)) != 0) failed = "fchmodat2";
  if (!failed && (what & 4)) {
    struct timespec ts[2] = {{atime / 1000000000LL, atime % 1000000000LL}, {mtime / 1000000000LL, mtime % 1000000000LL}};
    for (int k = 0; k < 2; k++)
      if (ts[k].tv_nsec < 0) ts[k].tv_nsec += 1000000000LL, ts[k].tv_sec -= 1;
    if (utimensat(dir, base, ts, AT_SYMLINK_NOFOLLOW) != 0) failed = "utimensat";
  }
  int e = errno;
  done_parent(root, dir);
  if (failed) throw_at(env, failed, rel, e);
  free(rel);
  return NULL;
}

napi_value jvs_beneath_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"openRoot", NULL, open_root, NULL, NULL, NULL, napi_default, NULL},
    {"openBeneath", NULL, open_beneath_js, NULL, NULL, NULL, napi_default, NULL},
    {"removeBeneath", NULL, remove_beneath, NULL, NULL, NULL, napi_default, NULL},
    {"mkdirBeneath", NULL, mkdir_beneath, NULL, NULL, NULL, napi_default, NULL},
    {"renameBeneath", NULL, rename_beneath, NULL, NULL, NULL, napi_default, NULL},
    {"symlinkBeneath", NULL, symlink_beneath, NULL, NULL, NULL, napi_default, NULL},
    {"linkBeneath", NULL, link_beneath, NULL, NULL, NULL, napi_default, NULL},
    {"metaBeneath", NULL, meta_beneath, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}
