/*
 * jvs_native: the few Linux syscalls Node.js does not expose.
 *   renameExchange(a, b)            renameat2(RENAME_EXCHANGE): swap two paths atomically
 *   syncfs(path)                    flush the whole filesystem holding `path` (one call
 *                                   instead of an fsync per file of a snapshot tree)
 *   lutimesNs(path, atimeNs, mtimeNs)  utimensat(AT_SYMLINK_NOFOLLOW) with nanoseconds
 *   flockExclusive(path)            open/create `path` and take flock(LOCK_EX|LOCK_NB);
 *                                   returns the fd (close it to release). The kernel drops
 *                                   the lock when the holder dies; JuiceFS carries it
 *                                   between clients.
 *   flockShared(path)               the same with flock(LOCK_SH|LOCK_NB): many holders at
 *                                   once, refused while an exclusive holder has it.
 * More functions come from jvs_tree.c (tree scans and bulk links) and jvs_hash.c
 * (threaded file hashing) and jvs_xattr.c (extended attributes); each registers itself through its *_init hook below.
 * Every function throws an Error with `code` set to the errno name on failure.
 * Callers keep a TypeScript fallback for when this addon is not built.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jvs_native.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

const char *jvs_errno_name(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EXDEV: return "EXDEV";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EBUSY: return "EBUSY";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EWOULDBLOCK: return "EAGAIN";
    case ENOTTY: return "ENOTTY";
    case ELOOP: return "ELOOP";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EROFS: return "EROFS";
    case ETXTBSY: return "ETXTBSY";
    case EFBIG: return "EFBIG";
    case EBADF: return "EBADF";
    case ENOSYS: return "ENOSYS";
    case EMLINK: return "EMLINK";
    case EBADMSG: return "EBADMSG";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_throw_error(env, jvs_errno_name(e), msg);
  return NULL;
}

/* Copies a path argument's bytes (jvs_names.c) into buf; returns 0 on failure (exception pending). */
static int get_path(napi_env env, napi_value v, char *buf, size_t len) {
  size_t got = 0;
  char *p = jvs_get_path(env, v, &got);
  if (!p) return 0;
  if (got >= len - 1) {
    free(p);
    napi_throw_range_error(env, NULL, "path too long");
    return 0;
  }
  memcpy(buf, p, got + 1);
  free(p);
  return 1;
}

static napi_value rename_exchange(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char a[4096], b[4096];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) { napi_throw_type_error(env, NULL, "renameExchange(a, b)"); return NULL; }
  if (!get_path(env, argv[0], a, sizeof a) || !get_path(env, argv[1], b, sizeof b)) return NULL;
  if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0) return throw_errno(env, "renameat2", errno);
  return NULL;
}

/* The one path argument, opened read-only: an fd, or -1 with a JavaScript exception pending. */
static int path_arg_fd(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  char p[4096];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, NULL, usage);
    return -1;
  }
  if (!get_path(env, argv[0], p, sizeof p)) return -1;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno(env, "open", errno);
  return fd;
}

static napi_value do_syncfs(napi_env env, napi_callback_info info) {
  int fd = path_arg_fd(env, info, "syncfs(path)");
  if (fd < 0) return NULL;
  int rc = syncfs(fd);
  int e = errno;
  close(fd);
  if (rc != 0) return throw_errno(env, "syncfs", e);
  return NULL;
}

/* syncfsStart(path) -> handle; syncfsWait(handle): the same syncfs(2) on a background
   thread, so the caller can compute meanwhile (a first snapshot's root hash and index
   chunks while the tree is flushed). A handle never waited for is joined when collected. */
struct bg_sync {
  pthread_t tid;
  int fd, rc, err, started, joined;
};

static void *bg_sync_run(void *arg) {
  struct bg_sync *b = arg;
  b->rc = syncfs(b->fd);
  b->err = errno;
  return NULL;
}

static void bg_sync_join(struct bg_sync *b) {
  if (b->joined) return;
  if (b->started) pthread_join(b->tid, NULL);
  else bg_sync_run(b); /* no thread could start: sync here */
  close(b->fd);
  b->joined = 1;
}

static void bg_sync_free(napi_env env, void *data, void *hint) {
  bg_sync_join(data);
  free(data);
}

static napi_value syncfs_start(napi_env env, napi_callback_info info) {
  int fd = path_arg_fd(env, info, "syncfsStart(path)");
  if (fd < 0) return NULL;
  struct bg_sync *b = calloc(1, sizeof *b);
  if (!b) {
    close(fd);
    return throw_errno(env, "syncfsStart", ENOMEM);
  }
  b->fd = fd;
  b->started = pthread_create(&b->tid, NULL, bg_sync_run, b) == 0;
  napi_value handle;
  napi_create_external(env, b, bg_sync_free, NULL, &handle);
  return handle;
}

static napi_value syncfs_wait(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "syncfsWait(handle)");
    return NULL;
  }
  struct bg_sync *b = data;
  bg_sync_join(b);
  if (b->rc != 0) return throw_errno(env, "syncfs", b->err);
  return NULL;
}

static int get_ns(napi_env env, napi_value v, struct timespec *ts) {
  int64_t ns;
  bool lossless;
  if (napi_get_value_bigint_int64(env, v, &ns, &lossless) != napi_ok) {
    napi_throw_type_error(env, NULL, "times must be bigint nanoseconds");
    return 0;
  }
  ts->tv_sec = ns / 1000000000LL;
  ts->tv_nsec = ns % 1000000000LL;
  if (ts->tv_nsec < 0) { ts->tv_nsec += 1000000000LL; ts->tv_sec -= 1; }
  return 1;
}

static napi_value lutimes_ns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char p[4096];
  struct timespec ts[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) { napi_throw_type_error(env, NULL, "lutimesNs(path, atimeNs, mtimeNs)"); return NULL; }
  if (!get_path(env, argv[0], p, sizeof p) || !get_ns(env, argv[1], &ts[0]) || !get_ns(env, argv[2], &ts[1])) return NULL;
  if (utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, "utimensat", errno);
  return NULL;
}

static napi_value flock_mode(napi_env env, napi_callback_info info, int mode, const char *usage) {
  size_t argc = 1;
  napi_value argv[1], out;
  char p[4096];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) { napi_throw_type_error(env, NULL, usage); return NULL; }
  if (!get_path(env, argv[0], p, sizeof p)) return NULL;
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return throw_errno(env, "open", errno);
  if (flock(fd, mode | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "flock", e);
  }
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value flock_exclusive(napi_env env, napi_callback_info info) {
  return flock_mode(env, info, LOCK_EX, "flockExclusive(path)");
}

static napi_value flock_shared(napi_env env, napi_callback_info info) {
  return flock_mode(env, info, LOCK_SH, "flockShared(path)");
}

napi_value jvs_tree_init(napi_env env, napi_value exports);
napi_value jvs_hash_init(napi_env env, napi_value exports);
napi_value jvs_beneath_init(napi_env env, napi_value exports);
napi_value jvs_xattr_init(napi_env env, napi_value exports);
napi_value jvs_chunks_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"renameExchange", NULL, rename_exchange, NULL, NULL, NULL, napi_default, NULL},
    {"syncfs", NULL, do_syncfs, NULL, NULL, NULL, napi_default, NULL},
    {"syncfsStart", NULL, syncfs_start, NULL, NULL, NULL, napi_default, NULL},
    {"syncfsWait", NULL, syncfs_wait, NULL, NULL, NULL, napi_default, NULL},
    {"lutimesNs", NULL, lutimes_ns, NULL, NULL, NULL, napi_default, NULL},
    {"flockExclusive", NULL, flock_exclusive, NULL, NULL, NULL, napi_default, NULL},
    {"flockShared", NULL, flock_shared, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  jvs_tree_init(env, exports);
  jvs_hash_init(env, exports);
  jvs_beneath_init(env, exports);
  jvs_procfd_init(env, exports);
  jvs_xattr_init(env, exports);
  jvs_chunks_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
