/*
 * jvs_xattr: extended attributes carried from one tree to another (snapshot, restore,
 * fork), on a few threads, and read back for comparisons.
 *
 *   xattrCopy(srcRoot, dstRoot, rels, count, flags, threads)
 *     rels     "a\0b\0…": `count` paths relative to both roots ("" is the root itself)
 *     flags    1 EXACT: names the destination has and the source lacks are removed
 *              (a restore into existing entries); without it only the source's are set
 *              (a destination this run created)
 *     returns  the losses as a flat array [index, name, errno name, …]: an attribute
 *              that could not be read or set (name ""; the entry could not be reached);
 *              its `withXattrs` counts the entries whose source had any attribute
 *   xattrSupported(root)  whether root's filesystem keeps extended attributes at all
 *   xattrGet(root, rel)  the attributes of one entry as [name, Buffer, …] (sorted by
 *              name), [] where the filesystem has none; throws with `code` on failure
 *
 * Every entry is opened below its root's fd with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) as O_PATH | O_NOFOLLOW, so a symlink is the link itself and
 * nothing outside the root is reached; the attributes are then read and written
 * through the fd's /proc/self/fd magic link (the *xattr calls take no fd for O_PATH
 * descriptors, and getxattrat refuses them with AT_EMPTY_PATH on Linux 6.18). The
 * link resolves to the exact inode, symlinks included.
 *
 * A value is set only when the destination lacks it or holds another one: a restore
 * then moves no ctime (the worktree state's stat stays valid) unless something
 * differs. A set the destination refuses is not a loss when it already holds that very
 * value (e.g. a security label the policy gave it). Writing user.* attributes needs
 * write permission on the inode; a read-only file this process owns gets u+w for the
 * moment of the set (not as root, which needs none).
 *
 * Why native: Node.js has no xattr calls at all. Without this addon JVS cannot see
 * extended attributes and says so in the operation's `degraded` list.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "jvs_native.h"

#define XBUF (64 << 10) /* XATTR_SIZE_MAX and XATTR_LIST_MAX */
#define EXACT 1
#define MAX_THREADS 16

/* `rel` below `root` as an O_PATH fd, never through a symlink and never out of root; "" is root itself. */
static int open_path_beneath(int root, const char *rel) {
  if (rel[0] == 0) return fcntl(root, F_DUPFD_CLOEXEC, 0);
  return jvs_open_beneath(root, rel, O_PATH, 0);
}

/* Whether an errno means "no attributes here at all" (the filesystem keeps none). */
static int unsupported(int e) {
  return e == EOPNOTSUPP || e == ENOTSUP || e == ENOSYS;
}

/* The names of fd's attributes into buf (NUL-separated); their total length, or -1 (errno). */
static ssize_t list_of(const char *pp, char *buf) {
  ssize_t n = listxattr(pp, buf, XBUF);
  if (n < 0 && unsupported(errno)) return 0;
  return n;
}

static int listed(const char *list, ssize_t n, const char *name) {
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
    if (strcmp(list + i, name) == 0) return 1;
  return 0;
}

typedef struct {
  const char **rels;
  size_t count;
  int flags;
  int src_root, dst_root;
  int root; /* running as root */
  size_t next; /* atomic */
  size_t with_xattrs; /* entries whose source had any attribute (atomic) */
  pthread_mutex_t mu;
  /* losses, under mu */
  struct loss { size_t index; char *name; int err; } *losses;
  size_t nloss, cap;
} Run;

typedef struct {
  Run *run;
  char *slist, *dlist, *sval, *dval;
} Worker;

static void lost(Run *r, size_t i, const char *name, int e) {
  pthread_mutex_lock(&r->mu);
  if (r->nloss == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 16;
    struct loss *l = realloc(r->losses, cap * sizeof *l);
    if (!l) {
      pthread_mutex_unlock(&r->mu);
      return;
    }
    r->losses = l;
    r->cap = cap;
  }
  r->losses[r->nloss].index = i;
  r->losses[r->nloss].name = strdup(name);
  r->losses[r->nloss].err = e ? e : EIO;
  r->nloss++;
  pthread_mutex_unlock(&r->mu);
}

/* setxattr, giving a read-only inode this process owns u+w for the moment (not as root). */
static int set_one(Run *r, const char *pp, int fd, const char *name, const char *v, size_t n) {
  if (setxattr(pp, name, v, n, 0) == 0) return 0;
  int e = errno;
  struct stat st;
  if (e != EACCES || r->root || fstat(fd, &st) != 0 || st.st_uid != geteuid() || S_ISLNK(st.st_mode)) {
    errno = e;
    return -1;
  }
  if (chmod(pp, (st.st_mode & 07777) | 0200) != 0) {
    errno = e;
    return -1;
  }
  int rc = setxattr(pp, name, v, n, 0);
  e = errno;
  chmod(pp, st.st_mode & 07777);
  errno = e;
  return rc;
}

static void copy_entry(Worker *w, size_t i) {
  Run *r = w->run;
  const char *rel = r->rels[i];
  int s = open_path_beneath(r->src_root, rel);
  if (s < 0) return lost(r, i, "", errno);
  char sp[32], dp[32];
  snprintf(sp, sizeof sp, "/proc/self/fd/%d", s);
  ssize_t sn = list_of(sp, w->slist);
  if (sn < 0) {
    int e = errno;
    close(s);
    return lost(r, i, "", e);
  }
  if (sn > 0) __atomic_fetch_add(&r->with_xattrs, 1, __ATOMIC_RELAXED);
  if (sn == 0 && !(r->flags & EXACT)) {
    close(s);
    return;
  }
  int d = open_path_beneath(r->dst_root, rel);
  if (d < 0) {
    int e = errno;
    close(s);
    return lost(r, i, "", e);
  }
  snprintf(dp, sizeof dp, "/proc/self/fd/%d", d);
  ssize_t dn = list_of(dp, w->dlist);
  if (dn < 0) dn = 0; /* then every value is simply set */
  for (ssize_t k = 0; k < sn; k += (ssize_t)strlen(w->slist + k) + 1) {
    const char *name = w->slist + k;
    ssize_t vn = getxattr(sp, name, w->sval, XBUF);
    if (vn < 0) {
      if (errno != ENODATA) lost(r, i, name, errno); /* ENODATA: removed since the list */
      continue;
    }
    if (dn > 0 && listed(w->dlist, dn, name)) {
      ssize_t have = getxattr(dp, name, w->dval, XBUF);
      if (have == vn && memcmp(w->sval, w->dval, (size_t)vn) == 0) continue;
    }
    if (set_one(r, dp, d, name, w->sval, (size_t)vn) != 0) {
      int e = errno;
      ssize_t have = getxattr(dp, name, w->dval, XBUF);
      if (!(have == vn && memcmp(w->sval, w->dval, (size_t)vn) == 0)) lost(r, i, name, e);
    }
  }
  if (r->flags & EXACT) {
    for (ssize_t k = 0; k < dn; k += (ssize_t)strlen(w->dlist + k) + 1) {
      const char *name = w->dlist + k;
      if (sn > 0 && listed(w->slist, sn, name)) continue;
      if (removexattr(dp, name) != 0 && errno != ENODATA) lost(r, i, name, errno);
    }
  }
  close(s);
  close(d);
}

static void *work(void *arg) {
  Worker *w = arg;
  Run *r = w->run;
  for (;;) {
    size_t i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
    if (i >= r->count) break;
    copy_entry(w, i);
  }
  return NULL;
}

static napi_value throw_errno(napi_env env, int e, const char *what, const char *path) {
  char msg[4400];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", jvs_errno_name(e), strerror(e), what, path);
  napi_value code, text, err;
  napi_create_string_utf8(env, jvs_errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_set_named_property(env, err, "code", code);
  napi_throw(env, err);
  return NULL;
}

static int open_root(napi_env env, napi_value v) {
  size_t len;
  char *p = jvs_get_path(env, v, &len);
  if (!p) return -1;
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno(env, errno, "open", p);
  free(p);
  return fd;
}

static napi_value xattr_copy(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t count, flags, threads;
  if (argc < 6 || napi_get_value_uint32(env, argv[3], &count) != napi_ok || napi_get_value_uint32(env, argv[4], &flags) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &threads) != napi_ok) {
    napi_throw_type_error(env, NULL, "xattrCopy(srcRoot, dstRoot, rels, count, flags, threads)");
    return NULL;
  }
  size_t bytes;
  char *text = jvs_get_path(env, argv[2], &bytes);
  if (!text) return NULL;
  Run r;
  memset(&r, 0, sizeof r);
  r.rels = calloc(count ? count : 1, sizeof *r.rels);
  if (!r.rels) {
    free(text);
    napi_throw_error(env, "ENOMEM", "xattrCopy: out of memory");
    return NULL;
  }
  char *p = text, *end = text + bytes;
  for (size_t i = 0; i < count; i++) {
    if (p > end) {
      free(text), free(r.rels);
      napi_throw_range_error(env, NULL, "xattrCopy: fewer paths than count");
      return NULL;
    }
    r.rels[i] = p;
    p += strlen(p) + 1;
  }
  r.count = count;
  r.flags = (int)flags;
  r.root = geteuid() == 0;
  r.src_root = open_root(env, argv[0]);
  r.dst_root = r.src_root < 0 ? -1 : open_root(env, argv[1]);
  if (r.src_root < 0 || r.dst_root < 0) {
    if (r.src_root >= 0) close(r.src_root);
    free(text), free(r.rels);
    return NULL;
  }
  pthread_mutex_init(&r.mu, NULL);
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (threads > count) threads = count ? count : 1;
  Worker workers[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  unsigned started = 0;
  for (unsigned t = 0; t < threads; t++) {
    Worker *w = &workers[t];
    w->run = &r;
    w->slist = malloc(4 * (size_t)XBUF);
    if (!w->slist) break;
    w->dlist = w->slist + XBUF;
    w->sval = w->dlist + XBUF;
    w->dval = w->sval + XBUF;
    if (t > 0 && pthread_create(&tids[t], NULL, work, w) != 0) {
      free(w->slist);
      break;
    }
    started = t + 1;
  }
  if (started > 0) work(&workers[0]);
  for (unsigned t = 1; t < started; t++) pthread_join(tids[t], NULL);
  for (unsigned t = 0; t < started; t++) free(workers[t].slist);
  pthread_mutex_destroy(&r.mu);
  close(r.src_root);
  close(r.dst_root);
  free(text), free(r.rels);
  if (started == 0) {
    napi_throw_error(env, "ENOMEM", "xattrCopy: out of memory");
    return NULL;
  }
  napi_value out;
  napi_create_array_with_length(env, 3 * r.nloss, &out);
  for (size_t k = 0; k < r.nloss; k++) {
    napi_value v;
    napi_create_uint32(env, (uint32_t)r.losses[k].index, &v);
    napi_set_element(env, out, (uint32_t)(3 * k), v);
    jvs_create_name(env, r.losses[k].name ? r.losses[k].name : "", NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, out, (uint32_t)(3 * k + 1), v);
    napi_create_string_utf8(env, jvs_errno_name(r.losses[k].err), NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, out, (uint32_t)(3 * k + 2), v);
    free(r.losses[k].name);
  }
  free(r.losses);
  napi_value seen;
  napi_create_double(env, (double)r.with_xattrs, &seen);
  napi_set_named_property(env, out, "withXattrs", seen);
  return out;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static napi_value xattr_get(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "xattrGet(root, rel)");
    return NULL;
  }
  int root = open_root(env, argv[0]);
  if (root < 0) return NULL;
  size_t len;
  char *rel = jvs_get_path(env, argv[1], &len);
  if (!rel) {
    close(root);
    return NULL;
  }
  int fd = open_path_beneath(root, rel);
  int e = errno;
  close(root);
  if (fd < 0) {
    throw_errno(env, e, "open", rel);
    free(rel);
    return NULL;
  }
  char pp[32];
  snprintf(pp, sizeof pp, "/proc/self/fd/%d", fd);
  char *list = malloc(2 * (size_t)XBUF + (XBUF / 2) * sizeof(char *));
  const char **names = (const char **)(list + 2 * (size_t)XBUF);
  size_t nn = 0;
  ssize_t n = list ? list_of(pp, list) : -1;
  if (n < 0) {
    e = list ? errno : ENOMEM;
    close(fd);
    free(list);
    throw_errno(env, e, "listxattr", rel);
    free(rel);
    return NULL;
  }
  for (ssize_t k = 0; k < n; k += (ssize_t)strlen(list + k) + 1) names[nn++] = list + k;
  qsort(names, nn, sizeof *names, by_name);
  napi_value out;
  napi_create_array(env, &out);
  uint32_t at = 0;
  for (size_t k = 0; k < nn; k++) {
    ssize_t vn = getxattr(pp, names[k], list + XBUF, XBUF);
    if (vn < 0) {
      if (errno == ENODATA) continue;
      e = errno;
      close(fd);
      free(list);
      throw_errno(env, e, "getxattr", rel);
      free(rel);
      return NULL;
    }
    napi_value name, value;
    jvs_create_name(env, names[k], NAPI_AUTO_LENGTH, &name);
    void *data;
    napi_create_buffer_copy(env, (size_t)vn, list + XBUF, &data, &value);
    napi_set_element(env, out, at++, name);
    napi_set_element(env, out, at++, value);
  }
  close(fd);
  free(list);
  free(rel);
  return out;
}

/* Whether the filesystem holding the folder `root` keeps extended attributes at all. */
static napi_value xattr_supported(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "xattrSupported(root)");
    return NULL;
  }
  int root = open_root(env, argv[0]);
  if (root < 0) return NULL;
  char pp[32];
  snprintf(pp, sizeof pp, "/proc/self/fd/%d", root);
  int ok = !(listxattr(pp, NULL, 0) < 0 && unsupported(errno));
  close(root);
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

napi_value jvs_xattr_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"xattrCopy", NULL, xattr_copy, NULL, NULL, NULL, napi_default, NULL},
    {"xattrGet", NULL, xattr_get, NULL, NULL, NULL, napi_default, NULL},
    {"xattrSupported", NULL, xattr_supported, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
