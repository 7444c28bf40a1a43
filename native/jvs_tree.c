/*
 * jvs_tree: the per-entry work of incremental snapshots and restores, without a
 * JavaScript object per system call.
 *   scanDirs(paths, threads) -> Array<{ names, stats }>
 *       the entries of each folder ("." and ".." left out) with their lstat as
 *       SCAN_FIELDS signed 64-bit values per entry (order of JVS_STAT_* below), folders
 *       scanned on up to `threads` threads (one level of a breadth-first walk). Names
 *       come sorted in UTF-16 code-unit order, the order JavaScript's sort gives (names
 *       that are not valid UTF-8 cross as jvs_names.c escapes them, and sort so). An
 *       entry that vanishes between readdir and lstat is left out. Throws the first error.
 *   scanTreeStart(root, threads, reuse?) -> handle;  scanTreeWait(handle) -> Array<{ rel, names, stats }>
 *       every folder below root (root itself as rel ""), scanned as scanDirs does, by
 *       `threads` background threads that take folders from a shared queue and add the
 *       subfolders they find (symlinks are not followed): the whole tree on every core
 *       while JavaScript does other work. Folders come in no particular order. With
 *       reuse ({ previous, dirs, trees }: dirty tracking's word that only those folders
 *       changed since the finished scan `previous` began), other folders are taken
 *       from `previous` without being read (reuse_take).
 *   linkStart(fromRoot, toRoot, rels, count, threads) -> handle;  linkWait(handle) -> Int32Array
 *       rels is "a\0b\0..." (count paths): each toRoot/rel becomes a hard link to
 *       fromRoot/rel (linkat through fds of the two roots), made on `threads` background
 *       threads while JavaScript goes on; linkWait joins them and returns the errno of
 *       each link (0: done). The list is cut into one contiguous run per thread, so
 *       threads mostly insert into different folders (a folder's entries come together
 *       in walk order). A handle never waited for is joined when it is garbage-collected.
 *   classify(scan, state, probeNs, parent, parentDir, stageDir, threads) -> result | null
 *       an incremental snapshot's per-file decision on a finished scanTreeStart scan;
 *   restorePlan(scan, target, state, probeNs) -> result | null
 *       an incremental restore's: see the comments above their definitions.
 * Errors of the call itself (a folder that cannot be read) throw with `code` set.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jvs_native.h"

enum { JVS_STAT_MODE, JVS_STAT_NLINK, JVS_STAT_UID, JVS_STAT_GID, JVS_STAT_SIZE, JVS_STAT_ATIME, JVS_STAT_MTIME, JVS_STAT_CTIME, JVS_STAT_INO, JVS_STAT_DEV, SCAN_FIELDS };

static napi_value throw_code(napi_env env, const char *what, int e) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_throw_error(env, jvs_errno_name(e), msg);
  return NULL;
}

/* A JS string argument as a malloc'ed byte string (names as jvs_names.c carries them; NULL with an exception pending). */
static char *get_string(napi_env env, napi_value v, size_t *len_out) {
  return jvs_get_path(env, v, len_out);
}

static int64_t ns(struct timespec t) {
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* One folder scanned off the main thread: names packed "a\0b\0...", stats as scanDirs returns them. */
struct scan_result {
  char *names;
  size_t names_len, names_cap;
  size_t *offsets;
  int64_t *stats;
  size_t n, cap;
  size_t *order; /* entry indexes in name order (scan_sort) */
  int err;
  int odd_names; /* some name is not valid UTF-8 (its bytes sort as their escapes do) */
};

static void scan_free(struct scan_result *r) {
  free(r->names);
  free(r->offsets);
  free(r->stats);
  free(r->order);
}

/* Grows *buf (capacity *cap, starting at `first` bytes, doubling) to hold `need` bytes: 0, or ENOMEM. */
static int reserve_bytes(char **buf, size_t *cap, size_t need, size_t first) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap * 2 : first;
  while (c < need) c *= 2;
  char *b = realloc(*buf, c);
  if (!b) return ENOMEM;
  *buf = b;
  *cap = c;
  return 0;
}

static int scan_push(struct scan_result *r, const char *name, const struct stat *st) {
  size_t len = strlen(name) + 1;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    int64_t *s = realloc(r->stats, cap * SCAN_FIELDS * sizeof(int64_t));
    if (!s) return ENOMEM;
    r->stats = s;
    size_t *o = realloc(r->offsets, cap * sizeof(size_t));
    if (!o) return ENOMEM;
    r->offsets = o;
    r->cap = cap;
  }
  if (reserve_bytes(&r->names, &r->names_cap, r->names_len + len, 4096)) return ENOMEM;
  memcpy(r->names + r->names_len, name, len);
  if (!r->odd_names && !jvs_utf8_valid(name, len - 1)) r->odd_names = 1;
  r->offsets[r->n] = r->names_len;
  r->names_len += len;
  int64_t *s = r->stats + r->n * SCAN_FIELDS;
  s[JVS_STAT_MODE] = st->st_mode;
  s[JVS_STAT_NLINK] = (int64_t)st->st_nlink;
  s[JVS_STAT_UID] = st->st_uid;
  s[JVS_STAT_GID] = st->st_gid;
  s[JVS_STAT_SIZE] = st->st_size;
  s[JVS_STAT_ATIME] = ns(st->st_atim);
  s[JVS_STAT_MTIME] = ns(st->st_mtim);
  s[JVS_STAT_CTIME] = ns(st->st_ctim);
  s[JVS_STAT_INO] = (int64_t)st->st_ino;
  s[JVS_STAT_DEV] = (int64_t)st->st_dev;
  r->n++;
  return 0;
}

static void scan_one(const char *dir, struct scan_result *r) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    r->err = errno;
    return;
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    r->err = errno;
    close(fd);
    return;
  }
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    const char *name = de->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    struct stat st;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) {
        errno = 0;
        continue;
      }
      r->err = errno;
      break;
    }
    if ((r->err = scan_push(r, name, &st)) != 0) break;
    errno = 0;
  }
  if (!r->err && errno) r->err = errno;
  closedir(d);
}

/*
 * UTF-8 strings in UTF-16 code-unit order. Byte order equals it except where a
 * supplementary character (4-byte form, lead F0-F4; UTF-16 surrogates D800-DBFF)
 * meets a character from U+E000 up (lead EE or EF): UTF-16 puts the surrogate first.
 */
static int utf16_order(const char *a, const char *b) {
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  while (*x && *x == *y) x++, y++;
  if (*x >= 0xF0 && (*y == 0xEE || *y == 0xEF)) return -1;
  if (*y >= 0xF0 && (*x == 0xEE || *x == 0xEF)) return 1;
  return (int)*x - (int)*y;
}

/*
 * The same order for names that are not all valid UTF-8: compared unit by unit as
 * JavaScript compares their strings, where a byte outside any valid sequence is the
 * lone surrogate U+DC00 + byte (jvs_names.c). Only folders holding such a name pay it.
 */
static int escaped_order(const char *a, const char *b) {
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  uint16_t ux[2], uy[2];
  int nx = 0, ny = 0, kx = 0, ky = 0;
  for (;;) {
    if (kx == nx) {
      size_t used;
      nx = *x ? jvs_name_unit(x, SIZE_MAX, &used, ux) : 0; /* a NUL ends any sequence: SIZE_MAX is safe */
      x += nx ? used : 0;
      kx = 0;
    }
    if (ky == ny) {
      size_t used;
      ny = *y ? jvs_name_unit(y, SIZE_MAX, &used, uy) : 0;
      y += ny ? used : 0;
      ky = 0;
    }
    if (!nx || !ny) return nx ? 1 : ny ? -1 : 0;
    if (ux[kx] != uy[ky]) return (int)ux[kx] - (int)uy[ky];
    kx++, ky++;
  }
}

static int by_name(const void *p, const void *q, void *ctx) {
  const struct scan_result *r = ctx;
  const char *a = r->names + r->offsets[*(const size_t *)p], *b = r->names + r->offsets[*(const size_t *)q];
  return r->odd_names ? escaped_order(a, b) : utf16_order(a, b);
}

/* Puts the entries in name order (r->order); safe on any thread. */
static void scan_sort(struct scan_result *r) {
  if (r->err) return;
  r->order = malloc((r->n ? r->n : 1) * sizeof(size_t));
  if (!r->order) {
    r->err = ENOMEM;
    return;
  }
  for (size_t k = 0; k < r->n; k++) r->order[k] = k;
  qsort_r(r->order, r->n, sizeof(size_t), by_name, r);
}

/* { names, stats } of one scanned, sorted folder. */
static napi_value result_to_js(napi_env env, const struct scan_result *r) {
  napi_value names, ab, arr, o;
  void *data;
  napi_create_array_with_length(env, r->n, &names);
  napi_create_arraybuffer(env, r->n * SCAN_FIELDS * sizeof(int64_t), &data, &ab);
  int64_t *dst = data;
  for (size_t k = 0; k < r->n; k++) {
    size_t i = r->order[k];
    memcpy(dst + k * SCAN_FIELDS, r->stats + i * SCAN_FIELDS, SCAN_FIELDS * sizeof(int64_t));
    napi_value js_name;
    jvs_create_name(env, r->names + r->offsets[i], NAPI_AUTO_LENGTH, &js_name);
    napi_set_element(env, names, (uint32_t)k, js_name);
  }
  napi_create_typedarray(env, napi_bigint64_array, r->n * SCAN_FIELDS, ab, 0, &arr);
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "names", names);
  napi_set_named_property(env, o, "stats", arr);
  return o;
}

struct scan_job {
  char **dirs;
  struct scan_result *res;
  size_t count;
  size_t *next; /* shared cursor */
  pthread_mutex_t *mu;
};

static void *scan_run(void *arg) {
  struct scan_job *j = arg;
  for (;;) {
    pthread_mutex_lock(j->mu);
    size_t i = (*j->next)++;
    pthread_mutex_unlock(j->mu);
    if (i >= j->count) return NULL;
    scan_one(j->dirs[i], &j->res[i]);
    scan_sort(&j->res[i]);
  }
}

static napi_value scan_dirs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_array = false;
  if (argc != 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) return napi_throw_type_error(env, NULL, "scanDirs(paths, threads)"), NULL;
  uint32_t count = 0, threads = 1;
  napi_get_array_length(env, argv[0], &count);
  napi_get_value_uint32(env, argv[1], &threads);
  if (threads < 1) threads = 1;
  if (threads > 16) threads = 16;
  if (threads > count) threads = count ? count : 1;
  char **dirs = calloc(count ? count : 1, sizeof(char *));
  struct scan_result *res = calloc(count ? count : 1, sizeof(struct scan_result));
  napi_value out = NULL;
  if (!dirs || !res) {
    free(dirs);
    free(res);
    return throw_code(env, "scanDirs", ENOMEM);
  }
  uint32_t got = 0;
  for (; got < count; got++) {
    napi_value v;
    napi_get_element(env, argv[0], got, &v);
    if (!(dirs[got] = get_string(env, v, NULL))) break;
  }
  if (got == count) {
    size_t next = 0;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct scan_job job = {dirs, res, count, &next, &mu};
    pthread_t tids[16];
    int started[16] = {0};
    for (uint32_t t = 1; t < threads; t++) started[t] = pthread_create(&tids[t], NULL, scan_run, &job) == 0;
    scan_run(&job);
    for (uint32_t t = 1; t < threads; t++) if (started[t]) pthread_join(tids[t], NULL);
    int failed = -1;
    for (uint32_t i = 0; i < count && failed < 0; i++) if (res[i].err) failed = (int)i;
    if (failed >= 0) {
      throw_code(env, dirs[failed], res[failed].err);
    } else {
      napi_create_array_with_length(env, count, &out);
      for (uint32_t i = 0; i < count; i++) napi_set_element(env, out, i, result_to_js(env, &res[i]));
    }
  }
  for (uint32_t i = 0; i < count; i++) {
    free(dirs[i]);
    scan_free(&res[i]);
  }
  free(dirs);
  free(res);
  return out;
}

/* The one argument of a *Wait call: the handle its *Start returned (NULL, with a TypeError pending, if not). */
static void *handle_arg(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc != 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return data;
}

/* A whole-tree scan running in the background (scanTreeStart / scanTreeWait). */
struct tree_dir {
  char *rel;
  struct scan_result res;
};

struct tree_scan {
  char *root;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char **queue;
  size_t qlen, qcap;
  struct tree_dir *done;
  size_t dlen, dcap;
  int busy, err;
  char *err_path;
  uint32_t threads;
  pthread_t tids[16];
  int started[16], joined;
  struct reuse *reuse; /* scanTreeStart's optional third argument (see reuse_take) */
  size_t reused;       /* folders taken from it */
};

struct reuse;
static int reuse_take(struct reuse *u, const char *rel, struct scan_result *out);
static void reuse_free(napi_env env, struct reuse *u);

static char *join_rel(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *p = malloc(la + lb + 2);
  if (!p) return NULL;
  if (la) {
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
  } else memcpy(p, b, lb + 1);
  return p;
}

/* Under the lock: record a failure once (the first one is reported). */
static void tree_fail(struct tree_scan *t, int err, const char *path) {
  if (t->err) return;
  t->err = err;
  t->err_path = strdup(path);
}

static void *tree_run(void *arg) {
  struct tree_scan *t = arg;
  pthread_mutex_lock(&t->mu);
  for (;;) {
    while (t->qlen == 0 && t->busy > 0 && !t->err) pthread_cond_wait(&t->cv, &t->mu);
    if (t->qlen == 0 || t->err) break; /* nothing queued and nobody scanning: done */
    char *rel = t->queue[--t->qlen];
    t->busy++;
    pthread_mutex_unlock(&t->mu);

    char *abs = rel[0] ? join_rel(t->root, rel) : strdup(t->root);
    struct scan_result r = {0};
    int took = t->reuse && reuse_take(t->reuse, rel, &r);
    if (took) {
      /* the earlier scan's result still describes this folder */
    } else if (abs) {
      scan_one(abs, &r);
      scan_sort(&r);
    } else r.err = ENOMEM;
    /* Subfolders, named before taking the lock. */
    size_t nsub = 0;
    char **subs = NULL;
    if (!r.err) {
      for (size_t k = 0; k < r.n; k++) if (S_ISDIR((mode_t)r.stats[k * SCAN_FIELDS + JVS_STAT_MODE])) nsub++;
      subs = nsub ? malloc(nsub * sizeof(char *)) : NULL;
      if (nsub && !subs) r.err = ENOMEM;
      size_t j = 0;
      for (size_t k = 0; k < r.n && subs; k++) {
        if (!S_ISDIR((mode_t)r.stats[k * SCAN_FIELDS + JVS_STAT_MODE])) continue;
        if (!(subs[j++] = join_rel(rel, r.names + r.offsets[k]))) r.err = ENOMEM;
      }
    }

    pthread_mutex_lock(&t->mu);
    t->busy--;
    t->reused += took;
    if (r.err) tree_fail(t, r.err, abs ? abs : t->root);
    if (!r.err && t->dlen == t->dcap) {
      size_t cap = t->dcap ? t->dcap * 2 : 64;
      struct tree_dir *d = realloc(t->done, cap * sizeof *d);
      if (d) {
        t->done = d;
        t->dcap = cap;
      } else tree_fail(t, ENOMEM, t->root);
    }
    if (!t->err) {
      t->done[t->dlen++] = (struct tree_dir){rel, r};
      rel = NULL;
      if (t->qlen + nsub > t->qcap) {
        size_t cap = t->qcap ? t->qcap * 2 : 64;
        while (cap < t->qlen + nsub) cap *= 2;
        char **q = realloc(t->queue, cap * sizeof(char *));
        if (q) {
          t->queue = q;
          t->qcap = cap;
        } else tree_fail(t, ENOMEM, t->root);
      }
      for (size_t j = 0; j < nsub && !t->err; j++) {
        t->queue[t->qlen++] = subs[j];
        subs[j] = NULL;
      }
    } else scan_free(&r);
    for (size_t j = 0; j < nsub && subs; j++) free(subs[j]);
    free(subs);
    free(rel);
    free(abs);
    pthread_cond_broadcast(&t->cv);
  }
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

static void tree_join(struct tree_scan *t) {
  if (t->joined) return;
  for (uint32_t i = 0; i < t->threads; i++) {
    if (t->started[i]) pthread_join(t->tids[i], NULL);
  }
  t->joined = 1;
}

static void tree_free(napi_env env, void *data, void *hint) {
  struct tree_scan *t = data;
  tree_join(t);
  for (size_t i = 0; i < t->dlen; i++) {
    free(t->done[i].rel);
    scan_free(&t->done[i].res);
  }
  for (size_t i = 0; i < t->qlen; i++) free(t->queue[i]);
  free(t->done);
  free(t->queue);
  free(t->err_path);
  free(t->root);
  if (t->reuse) reuse_free(env, t->reuse);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  free(t);
}

static struct reuse *reuse_new(napi_env env, napi_value spec);

static napi_value scan_tree_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2 && argc != 3) return napi_throw_type_error(env, NULL, "scanTreeStart(root, threads, reuse?)"), NULL;
  struct tree_scan *t = calloc(1, sizeof *t);
  if (!t) return throw_code(env, "scanTreeStart", ENOMEM);
  if (argc == 3) {
    napi_valuetype ty;
    napi_typeof(env, argv[2], &ty);
    if (ty == napi_object && !(t->reuse = reuse_new(env, argv[2]))) {
      free(t);
      return NULL; /* exception pending */
    }
  }
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  napi_get_value_uint32(env, argv[1], &t->threads);
  if (t->threads < 1) t->threads = 1;
  if (t->threads > 16) t->threads = 16;
  t->root = get_string(env, argv[0], NULL);
  t->queue = malloc(64 * sizeof(char *));
  char *first = strdup("");
  if (!t->root || !t->queue || !first) {
    free(first);
    t->joined = 1;
    tree_free(env, t, NULL);
    return throw_code(env, "scanTreeStart", ENOMEM);
  }
  t->qcap = 64;
  t->queue[t->qlen++] = first;
  uint32_t running = 0;
  for (uint32_t i = 0; i < t->threads; i++) running += (t->started[i] = pthread_create(&t->tids[i], NULL, tree_run, t) == 0);
  if (!running) tree_run(t); /* no thread could start: scan here */
  napi_value handle;
  napi_create_external(env, t, tree_free, NULL, &handle);
  return handle;
}

/* scanTreeStats(handle) -> { folders, reused }: of a finished scan, how many folders it
 * has and how many of them were taken from the earlier scan (reuse). */
static napi_value scan_tree_stats(napi_env env, napi_callback_info info) {
  struct tree_scan *t = handle_arg(env, info, "scanTreeStats(handle)");
  if (!t) return NULL;
  tree_join(t);
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_double(env, (double)t->dlen, &v);
  napi_set_named_property(env, o, "folders", v);
  napi_create_double(env, (double)t->reused, &v);
  napi_set_named_property(env, o, "reused", v);
  return o;
}

static napi_value scan_tree_wait(napi_env env, napi_callback_info info) {
  struct tree_scan *t = handle_arg(env, info, "scanTreeWait(handle)");
  if (!t) return NULL;
  tree_join(t);
  if (t->err) return throw_code(env, t->err_path ? t->err_path : t->root, t->err);
  napi_value out;
  napi_create_array_with_length(env, t->dlen, &out);
  for (size_t i = 0; i < t->dlen; i++) {
    napi_value o = result_to_js(env, &t->done[i].res), rel;
    jvs_create_name(env, t->done[i].rel, NAPI_AUTO_LENGTH, &rel);
    napi_set_named_property(env, o, "rel", rel);
    napi_set_element(env, out, (uint32_t)i, o);
  }
  return out;
}

struct link_job {
  const char **rels;
  int from_fd, to_fd;
  int32_t *errs;
  size_t from, to;
};

/*
 * The folder part of a link's rel, opened below each root (jvs_open_beneath: no symlink,
 * no `..`), kept while consecutive rels share it (a run in walk order mostly does).
 */
struct link_dirs {
  char dir[4096];
  size_t len; /* SIZE_MAX: none open yet */
  int from, to, err;
};

static void link_dirs_close(struct link_dirs *d, const struct link_job *j) {
  if (d->from >= 0 && d->from != j->from_fd) close(d->from);
  if (d->to >= 0 && d->to != j->to_fd) close(d->to);
  d->from = d->to = -1;
}

/* Points d at rel's folder on both sides; 0, or the errno that refuses it. */
static int link_dirs_at(struct link_dirs *d, const struct link_job *j, const char *rel, size_t len) {
  if (len == d->len && memcmp(d->dir, rel, len) == 0) return d->err;
  link_dirs_close(d, j);
  d->len = SIZE_MAX;
  d->err = 0;
  if (len == 0) {
    d->from = j->from_fd;
    d->to = j->to_fd;
  } else if (len >= sizeof d->dir) {
    d->err = ENAMETOOLONG;
  } else {
    memcpy(d->dir, rel, len);
    d->dir[len] = 0;
    d->from = jvs_open_beneath(j->from_fd, d->dir, O_PATH | O_DIRECTORY, 0);
    if (d->from < 0) d->err = errno;
    else if ((d->to = jvs_open_beneath(j->to_fd, d->dir, O_PATH | O_DIRECTORY, 0)) < 0) d->err = errno;
  }
  if (len < sizeof d->dir) {
    memcpy(d->dir, rel, len);
    d->len = len;
  }
  return d->err;
}

/*
 * Each link is made between the two folders' fds by base name, so no symlink inside
 * either tree is followed on the way (a parent snapshot whose folder was swapped for a
 * link to an outside folder gives ELOOP, and the caller copies from the worktree
 * instead). linkat without AT_SYMLINK_FOLLOW never follows a final symlink either: it
 * would link the symlink itself, which the lstat after it catches (ELOOP, the link is
 * removed): only a regular file of the tree is ever linked.
 */
static void *link_run(void *arg) {
  struct link_job *j = arg;
  struct link_dirs d = {.len = SIZE_MAX, .from = -1, .to = -1};
  for (size_t i = j->from; i < j->to; i++) {
    const char *rel = j->rels[i];
    const char *slash = strrchr(rel, '/');
    const char *base = slash ? slash + 1 : rel;
    int e = link_dirs_at(&d, j, rel, slash ? (size_t)(slash - rel) : 0);
    if (e == 0 && linkat(d.from, base, d.to, base, 0) != 0) e = errno;
    if (e == 0) {
      struct stat st;
      if (fstatat(d.to, base, &st, AT_SYMLINK_NOFOLLOW) != 0) e = errno;
      else if (!S_ISREG(st.st_mode)) {
        unlinkat(d.to, base, 0);
        e = ELOOP;
      }
    }
    j->errs[i] = e;
  }
  link_dirs_close(&d, j);
  return NULL;
}

/* A background batch of links: owns its path buffer, folder fds, results and threads until waited for. */
struct link_batch {
  char *buf;
  const char **rels;
  int32_t *errs;
  int from_fd, to_fd;
  uint32_t count, threads;
  struct link_job jobs[16];
  pthread_t tids[16];
  int started[16];
  int joined;
};

static void batch_join(struct link_batch *b) {
  if (b->joined) return;
  for (uint32_t t = 0; t < b->threads; t++) {
    if (b->started[t]) pthread_join(b->tids[t], NULL);
    else link_run(&b->jobs[t]); /* no thread: do its share now */
  }
  b->joined = 1;
}

static void batch_free(napi_env env, void *data, void *hint) {
  struct link_batch *b = data;
  batch_join(b);
  if (b->from_fd >= 0) close(b->from_fd);
  if (b->to_fd >= 0) close(b->to_fd);
  free(b->rels);
  free(b->buf);
  free(b->errs);
  free(b);
}

/* Starts the batch's threads (each a contiguous run of its links); returns its handle. */
static napi_value batch_launch(napi_env env, struct link_batch *b) {
  if (b->threads < 1) b->threads = 1;
  if (b->threads > 16) b->threads = 16;
  if (b->threads > b->count / 64 + 1) b->threads = b->count / 64 + 1;
  for (uint32_t t = 0; t < b->threads; t++) {
    b->jobs[t] = (struct link_job){b->rels, b->from_fd, b->to_fd, b->errs, (size_t)b->count * t / b->threads, (size_t)b->count * (t + 1) / b->threads};
    b->started[t] = pthread_create(&b->tids[t], NULL, link_run, &b->jobs[t]) == 0;
  }
  napi_value handle;
  napi_create_external(env, b, batch_free, NULL, &handle);
  return handle;
}

/* An O_PATH fd of the folder `v` names (never a symlink to one), for the *at() calls; -1 with errno, or -2 with a JS exception pending. */
static int dir_fd_arg(napi_env env, napi_value v) {
  char *p = get_string(env, v, NULL);
  if (!p) return -2;
  int fd = open(p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); /* a root swapped for a symlink: ENOTDIR */
  int e = errno;
  free(p);
  errno = e;
  return fd;
}

/*
 * linkStart(fromRoot, toRoot, rels, count, threads): hard-link fromRoot/rel to
 * toRoot/rel for `count` paths given as "rel\0rel\0…", on background threads, through
 * fds of the two roots (no path concatenation, and the kernel resolves only the part
 * below each root).
 */
static napi_value link_start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 5) return napi_throw_type_error(env, NULL, "linkStart(fromRoot, toRoot, rels, count, threads)"), NULL;
  struct link_batch *b = calloc(1, sizeof *b);
  if (!b) return throw_code(env, "linkStart", ENOMEM);
  b->from_fd = b->to_fd = -1;
  napi_get_value_uint32(env, argv[3], &b->count);
  napi_get_value_uint32(env, argv[4], &b->threads);
  if (b->threads < 1) b->threads = 1;
  if (b->threads > 16) b->threads = 16;
  if (b->threads > b->count / 64 + 1) b->threads = b->count / 64 + 1;
  for (int side = 0; side < 2; side++) {
    int fd = dir_fd_arg(env, argv[side]);
    if (fd < 0) {
      int e = errno;
      b->joined = 1;
      batch_free(env, b, NULL);
      return fd == -2 ? NULL : throw_code(env, side ? "linkStart: destination folder" : "linkStart: source folder", e);
    }
    *(side ? &b->to_fd : &b->from_fd) = fd;
  }
  size_t len = 0;
  b->buf = get_string(env, argv[2], &len);
  b->rels = malloc((size_t)b->count * sizeof(char *) + 1);
  b->errs = calloc(b->count ? b->count : 1, sizeof(int32_t));
  if (!b->buf || !b->rels || !b->errs) {
    b->joined = 1;
    batch_free(env, b, NULL);
    return throw_code(env, "linkStart", ENOMEM);
  }
  size_t k = 0, p = 0;
  while (k < (size_t)b->count && p <= len) {
    b->rels[k++] = b->buf + p;
    p += strlen(b->buf + p) + 1;
  }
  if (k != (size_t)b->count) {
    b->joined = 1;
    batch_free(env, b, NULL);
    return napi_throw_range_error(env, NULL, "linkStart: fewer paths than count"), NULL;
  }
  return batch_launch(env, b);
}

static napi_value link_wait(napi_env env, napi_callback_info info) {
  struct link_batch *b = handle_arg(env, info, "linkWait(handle)");
  if (!b) return NULL;
  batch_join(b);
  napi_value ab, out;
  void *copy;
  napi_create_arraybuffer(env, (size_t)b->count * sizeof(int32_t), &copy, &ab);
  if (b->count) memcpy(copy, b->errs, (size_t)b->count * sizeof(int32_t));
  napi_create_typedarray(env, napi_int32_array, b->count, ab, 0, &out);
  return out;
}

/*
 * classify(scan, state, probeNs, parent, parentDir, stageDir, threads) -> result | null
 *
 * The usual file of an incremental snapshot, decided without a JavaScript object per
 * entry: the finished whole-tree scan (scanTreeStart) is put in walk order (depth first,
 * names in UTF-16 order, as src/fsutil/walk.ts does) and each regular file is looked up
 * in the worktree state (`state`: the state list's manifest chunks, concatenated, in
 * the binary layout of src/index/manifestCodec.ts). A file is vouched for when it is
 * alone on its inode, its record has a hash and no link group, the record's stat equals
 * the scan's (type, permission bits, size, mtime, ctime, inode, device) and both its
 * times are older than `probeNs` (the racy-clean rule of src/index/changeDetect.ts), and
 * the parent snapshot (`parent`, same layout; null when it is the same list) holds the
 * same content, size, mode and mtime at that path outside any of its link groups.
 * Exactly the rule of materialize.ts's linkAsRecorded, which stays the reference.
 *
 * The stage's folders are created (mode 0700, in walk order), then every vouched file
 * is hard-linked from parentDir on background threads (a linkStart batch).
 * Returns { rels, types (0 dir, 1 file, 2 symlink, 3 other), vouched (state record
 * index, or -1), stats (SCAN_FIELDS per entry), links (handle for linkWait, or null),
 * linkAt (entry index of each link), records (how many state records were read) }, or
 * null when the chunks cannot be parsed (the caller then takes the JavaScript path).
 */
struct rec {
  const char *rel, *link_of;
  uint32_t rel_len, link_of_len;
  uint8_t type, has_hash;
  uint16_t mode;
  double size;
  int64_t mtime, ctime;
  uint64_t dev, ino;
  const unsigned char *hash;
};

int jvs_record_len(const unsigned char *b, size_t end, size_t *o, uint32_t *n) {
  if (*o + 2 > end) return -1;
  uint16_t s;
  memcpy(&s, b + *o, 2);
  *o += 2;
  if (s == 0xffff) {
    if (*o + 4 > end) return -1;
    memcpy(n, b + *o, 4);
    *o += 4;
  } else *n = s;
  return *o + *n <= end ? 0 : -1;
}

/* Records of a chunk list (little-endian layout; this addon is built for the host). 0, or -1 when malformed. */
static int parse_records(const unsigned char *b, size_t end, struct rec **out, size_t *n_out) {
  size_t cap = 1024, n = 0, o = 0;
  struct rec *r = malloc(cap * sizeof *r);
  if (!r) return -1;
  while (o < end) {
    if (o + 44 > end) goto bad;
    if (n == cap) {
      struct rec *x = realloc(r, (cap *= 2) * sizeof *r);
      if (!x) goto bad;
      r = x;
    }
    struct rec *e = &r[n];
    memset(e, 0, sizeof *e);
    e->type = b[o];
    uint8_t flags = b[o + 1];
    if (e->type > 2) goto bad;
    memcpy(&e->mode, b + o + 2, 2);
    memcpy(&e->size, b + o + 4, 8);
    memcpy(&e->mtime, b + o + 12, 8);
    memcpy(&e->ctime, b + o + 20, 8);
    memcpy(&e->dev, b + o + 28, 8);
    memcpy(&e->ino, b + o + 36, 8);
    o += 44;
    if (jvs_record_len(b, end, &o, &e->rel_len)) goto bad;
    e->rel = (const char *)b + o;
    o += e->rel_len;
    if (flags & 1) {
      if (o + 32 > end) goto bad;
      e->has_hash = 1;
      e->hash = b + o;
      o += 32;
    }
    uint32_t skip;
    if (flags & 2) {
      if (jvs_record_len(b, end, &o, &skip)) goto bad;
      o += skip;
    }
    if (flags & 4) {
      if (jvs_record_len(b, end, &o, &e->link_of_len)) goto bad;
      e->link_of = (const char *)b + o;
      o += e->link_of_len;
    }
    n++;
  }
  *out = r;
  *n_out = n;
  return 0;
bad:
  free(r);
  return -1;
}

/* A set of byte strings (open addressing), each mapped to a number. */
struct strtab {
  const char **key;
  uint32_t *len, *val;
  size_t mask;
};

static uint64_t fnv64(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

static int strtab_init(struct strtab *t, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n + 1) cap *= 2;
  t->key = calloc(cap, sizeof *t->key);
  t->len = malloc(cap * sizeof *t->len);
  t->val = malloc(cap * sizeof *t->val);
  t->mask = cap - 1;
  return t->key && t->len && t->val ? 0 : -1;
}

static void strtab_free(struct strtab *t) {
  free(t->key);
  free(t->len);
  free(t->val);
}

/* Adds key -> val unless the key is there already (the first one stays). */
static void strtab_put(struct strtab *t, const char *k, uint32_t n, uint32_t val) {
  for (size_t i = fnv64(k, n) & t->mask;; i = (i + 1) & t->mask) {
    if (!t->key[i]) {
      t->key[i] = k;
      t->len[i] = n;
      t->val[i] = val;
      return;
    }
    if (t->len[i] == n && memcmp(t->key[i], k, n) == 0) return;
  }
}

static int64_t strtab_get(const struct strtab *t, const char *k, size_t n) {
  for (size_t i = fnv64(k, n) & t->mask;; i = (i + 1) & t->mask) {
    if (!t->key[i]) return -1;
    if (t->len[i] == n && memcmp(t->key[i], k, n) == 0) return t->val[i];
  }
}

/*
 * Reuse of an earlier whole-tree scan (scanTreeStart's third argument
 * { previous, dirs, trees }, given by the mount's dirty tracking, native/fuse/dirty.c):
 * a folder is taken from `previous` instead of being read when it is not in `dirs`,
 * not at or below one of `trees`, was in the earlier scan, and holds no file with more
 * than one link (a write through a link in another folder changes it without any event
 * naming this folder). The caller vouches that nothing else changed since `previous`
 * began; a folder that did change anyway is exactly as wrong as the caller's claim.
 */
struct reuse {
  struct tree_scan *prev;
  napi_ref prev_ref;
  struct strtab prev_dirs, dirty;
  char **dirs, **trees;
  size_t ndirs, ntrees;
};

static char **string_list(napi_env env, napi_value arr, size_t *n) {
  uint32_t len = 0;
  bool is_array = false;
  *n = 0;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) return calloc(1, sizeof(char *));
  napi_get_array_length(env, arr, &len);
  char **v = calloc(len ? len : 1, sizeof(char *));
  if (!v) return NULL;
  for (uint32_t i = 0; i < len; i++) {
    napi_value e;
    napi_get_element(env, arr, i, &e);
    if (!(v[i] = get_string(env, e, NULL))) {
      for (uint32_t j = 0; j < i; j++) free(v[j]);
      free(v);
      return NULL;
    }
  }
  *n = len;
  return v;
}

static void reuse_free(napi_env env, struct reuse *u) {
  if (u->prev_ref) napi_delete_reference(env, u->prev_ref);
  strtab_free(&u->prev_dirs);
  strtab_free(&u->dirty);
  for (size_t i = 0; i < u->ndirs; i++) free(u->dirs[i]);
  for (size_t i = 0; i < u->ntrees; i++) free(u->trees[i]);
  free(u->dirs);
  free(u->trees);
  free(u);
}

static struct reuse *reuse_new(napi_env env, napi_value spec) {
  napi_value pv, dv, tv;
  void *prev = NULL;
  if (napi_get_named_property(env, spec, "previous", &pv) != napi_ok || napi_get_value_external(env, pv, &prev) != napi_ok || !prev) {
    napi_throw_type_error(env, NULL, "scanTreeStart: reuse.previous must be a scanTreeStart handle");
    return NULL;
  }
  struct reuse *u = calloc(1, sizeof *u);
  if (!u) return throw_code(env, "scanTreeStart", ENOMEM), NULL;
  u->prev = prev;
  tree_join(u->prev); /* a finished scan only (the mount starts it well before) */
  napi_create_reference(env, pv, 1, &u->prev_ref);
  napi_get_named_property(env, spec, "dirs", &dv);
  napi_get_named_property(env, spec, "trees", &tv);
  u->dirs = string_list(env, dv, &u->ndirs);
  u->trees = string_list(env, tv, &u->ntrees);
  if (!u->dirs || !u->trees || strtab_init(&u->prev_dirs, u->prev->dlen) || strtab_init(&u->dirty, u->ndirs)) {
    reuse_free(env, u);
    return throw_code(env, "scanTreeStart", ENOMEM), NULL;
  }
  if (!u->prev->err)
    for (size_t i = 0; i < u->prev->dlen; i++) strtab_put(&u->prev_dirs, u->prev->done[i].rel, (uint32_t)strlen(u->prev->done[i].rel), (uint32_t)i);
  for (size_t i = 0; i < u->ndirs; i++) strtab_put(&u->dirty, u->dirs[i], (uint32_t)strlen(u->dirs[i]), 0);
  return u;
}

static int reuse_take(struct reuse *u, const char *rel, struct scan_result *out) {
  size_t n = strlen(rel);
  if (u->prev->err || strtab_get(&u->dirty, rel, n) >= 0) return 0;
  for (size_t i = 0; i < u->ntrees; i++) {
    size_t k = strlen(u->trees[i]);
    if (k == 0 || (n >= k && memcmp(rel, u->trees[i], k) == 0 && (rel[k] == 0 || rel[k] == '/'))) return 0;
  }
  int64_t at = strtab_get(&u->prev_dirs, rel, n);
  if (at < 0) return 0;
  const struct scan_result *p = &u->prev->done[at].res;
  if (p->err || !p->order) return 0;
  for (size_t k = 0; k < p->n; k++) {
    const int64_t *st = p->stats + k * SCAN_FIELDS;
    if (!S_ISDIR((mode_t)st[JVS_STAT_MODE]) && st[JVS_STAT_NLINK] > 1) return 0;
  }
  struct scan_result r = {0};
  size_t cap = p->n ? p->n : 1;
  r.names = malloc(p->names_len ? p->names_len : 1);
  r.offsets = malloc(cap * sizeof(size_t));
  r.stats = malloc(cap * SCAN_FIELDS * sizeof(int64_t));
  r.order = malloc(cap * sizeof(size_t));
  if (!r.names || !r.offsets || !r.stats || !r.order) {
    scan_free(&r);
    return 0; /* read it instead */
  }
  memcpy(r.names, p->names, p->names_len);
  memcpy(r.offsets, p->offsets, p->n * sizeof(size_t));
  memcpy(r.stats, p->stats, p->n * SCAN_FIELDS * sizeof(int64_t));
  memcpy(r.order, p->order, p->n * sizeof(size_t));
  r.names_len = r.names_cap = p->names_len;
  r.n = r.cap = p->n;
  r.odd_names = p->odd_names;
  *out = r;
  return 1;
}

struct classify_out {
  char *rels; /* every entry's rel, NUL-terminated, one after another */
  size_t rels_len, rels_cap;
  size_t *rel_at;
  uint8_t *types;
  int32_t *vouched;
  int64_t *stats;
  size_t n, cap;
};

/* Appends the entry `name` of the folder whose rel starts at c->rels + dir_at (SIZE_MAX: the root). */
static int out_push(struct classify_out *c, size_t dir_at, const char *name, const int64_t *st, uint8_t type) {
  size_t dlen = dir_at == SIZE_MAX ? 0 : strlen(c->rels + dir_at);
  size_t nlen = strlen(name), need = (dlen ? dlen + 1 : 0) + nlen + 1;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 1024;
    size_t *a = realloc(c->rel_at, cap * sizeof *a);
    if (a) c->rel_at = a;
    uint8_t *t = realloc(c->types, cap);
    if (t) c->types = t;
    int32_t *v = realloc(c->vouched, cap * sizeof *v);
    if (v) c->vouched = v;
    int64_t *s = realloc(c->stats, cap * SCAN_FIELDS * sizeof *s);
    if (s) c->stats = s;
    if (!a || !t || !v || !s) return ENOMEM;
    c->cap = cap;
  }
  if (reserve_bytes(&c->rels, &c->rels_cap, c->rels_len + need, 65536)) return ENOMEM;
  char *p = c->rels + c->rels_len;
  if (dlen) {
    memcpy(p, c->rels + dir_at, dlen); /* after any realloc above */
    p[dlen] = '/';
    memcpy(p + dlen + 1, name, nlen + 1);
  } else memcpy(p, name, nlen + 1);
  c->rel_at[c->n] = c->rels_len;
  c->rels_len += need;
  c->types[c->n] = type;
  c->vouched[c->n] = -1;
  memcpy(c->stats + c->n * SCAN_FIELDS, st, SCAN_FIELDS * sizeof(int64_t));
  c->n++;
  return 0;
}

/* The scanned folders in walk order: depth first, each folder's entries in name order. */
static int walk_order(struct tree_scan *t, struct classify_out *c) {
  struct strtab dirs;
  if (strtab_init(&dirs, t->dlen)) return ENOMEM;
  for (size_t i = 0; i < t->dlen; i++) strtab_put(&dirs, t->done[i].rel, (uint32_t)strlen(t->done[i].rel), (uint32_t)i);
  struct frame {
    size_t dir, k;
    size_t rel_at; /* offset of the folder's rel in c->rels, or SIZE_MAX for the root */
  } *stack = NULL;
  size_t depth = 0, cap = 0;
  int err = 0;
  int64_t root = strtab_get(&dirs, "", 0);
  if (root >= 0) {
    stack = malloc((cap = 64) * sizeof *stack);
    if (!stack) err = ENOMEM;
    else stack[depth++] = (struct frame){(size_t)root, 0, SIZE_MAX};
  }
  while (depth && !err) {
    struct frame *f = &stack[depth - 1];
    const struct scan_result *r = &t->done[f->dir].res;
    if (f->k == r->n) {
      depth--;
      continue;
    }
    size_t i = r->order[f->k++];
    const int64_t *st = r->stats + i * SCAN_FIELDS;
    mode_t m = (mode_t)st[JVS_STAT_MODE];
    uint8_t type = S_ISDIR(m) ? 0 : S_ISREG(m) ? 1 : S_ISLNK(m) ? 2 : 3;
    if ((err = out_push(c, f->rel_at, r->names + r->offsets[i], st, type))) break;
    if (type != 0) continue;
    size_t at = c->rel_at[c->n - 1];
    int64_t child = strtab_get(&dirs, c->rels + at, strlen(c->rels + at));
    if (child < 0) continue; /* gone before it could be scanned: no entries, as the JavaScript walk does */
    if (depth == cap) {
      struct frame *x = realloc(stack, (cap *= 2) * sizeof *stack);
      if (!x) {
        err = ENOMEM;
        break;
      }
      stack = x;
    }
    stack[depth++] = (struct frame){(size_t)child, 0, at};
  }
  free(stack);
  strtab_free(&dirs);
  return err;
}

static void classify_free(struct classify_out *c) {
  free(c->rels);
  free(c->rel_at);
  free(c->types);
  free(c->vouched);
  free(c->stats);
}

static napi_value classify(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *ext = NULL;
  bool lossless;
  int64_t probe = 0;
  uint32_t threads = 1;
  void *state = NULL, *parent = NULL;
  size_t state_len = 0, parent_len = 0;
  napi_valuetype pt;
  if (argc != 7 || napi_get_value_external(env, argv[0], &ext) != napi_ok || !ext ||
      napi_get_buffer_info(env, argv[1], &state, &state_len) != napi_ok ||
      napi_get_value_bigint_int64(env, argv[2], &probe, &lossless) != napi_ok ||
      napi_typeof(env, argv[3], &pt) != napi_ok ||
      (pt != napi_null && napi_get_buffer_info(env, argv[3], &parent, &parent_len) != napi_ok) ||
      napi_get_value_uint32(env, argv[6], &threads) != napi_ok)
    return napi_throw_type_error(env, NULL, "classify(scan, state, probeNs, parent, parentDir, stageDir, threads)"), NULL;
  struct tree_scan *t = ext;
  tree_join(t);
  if (t->err) return throw_code(env, t->err_path ? t->err_path : t->root, t->err);

  napi_value result = NULL;
  struct rec *srec = NULL, *prec = NULL;
  size_t sn = 0, pn = 0;
  struct strtab stab = {0}, ptab = {0}, grouped = {0};
  struct classify_out c = {0};
  struct link_batch *b = NULL;
  int stage_fd = -1;
  napi_get_null(env, &result);
  if (parse_records(state, state_len, &srec, &sn)) goto done;
  if (parent && parse_records(parent, parent_len, &prec, &pn)) goto done;
  if (!parent) {
    prec = srec;
    pn = sn;
  }
  if (strtab_init(&stab, sn) || strtab_init(&ptab, pn) || strtab_init(&grouped, 2 * pn)) goto oom;
  for (size_t i = 0; i < sn; i++) strtab_put(&stab, srec[i].rel, srec[i].rel_len, (uint32_t)i);
  for (size_t i = 0; i < pn; i++) {
    strtab_put(&ptab, prec[i].rel, prec[i].rel_len, (uint32_t)i);
    if (prec[i].link_of) {
      strtab_put(&grouped, prec[i].rel, prec[i].rel_len, 0);
      strtab_put(&grouped, prec[i].link_of, prec[i].link_of_len, 0);
    }
  }
  int err = walk_order(t, &c);
  if (err) {
    result = throw_code(env, "classify", err);
    goto done;
  }

  /* Folders of the stage first (links go into them), in walk order: parents first. */
  stage_fd = dir_fd_arg(env, argv[5]);
  if (stage_fd == -2) {
    result = NULL;
    goto done;
  }
  if (stage_fd < 0) {
    result = throw_code(env, "classify: stage folder", errno);
    goto done;
  }
  size_t nlinks = 0;
  for (size_t i = 0; i < c.n; i++) {
    const char *rel = c.rels + c.rel_at[i];
    if (c.types[i] == 0) {
      if (mkdirat(stage_fd, rel, 0700) != 0) {
        result = throw_code(env, rel, errno);
        goto done;
      }
      continue;
    }
    if (c.types[i] != 1) continue;
    const int64_t *st = c.stats + i * SCAN_FIELDS;
    if (st[JVS_STAT_NLINK] != 1) continue;
    size_t len = strlen(rel);
    int64_t k = strtab_get(&stab, rel, len);
    if (k < 0) continue;
    const struct rec *r = &srec[k];
    if (r->type != 1 || !r->has_hash || r->link_of) continue;
    if (!(r->ctime < probe && r->mtime < probe && r->ctime == st[JVS_STAT_CTIME] && r->mtime == st[JVS_STAT_MTIME] &&
          r->ino == (uint64_t)st[JVS_STAT_INO] && r->dev == (uint64_t)st[JVS_STAT_DEV] && r->size == (double)st[JVS_STAT_SIZE] &&
          r->mode == (uint16_t)(st[JVS_STAT_MODE] & 07777)))
      continue;
    int64_t q = strtab_get(&ptab, rel, len);
    if (q < 0) continue;
    const struct rec *p = &prec[q];
    if (p != r && !(p->type == 1 && p->has_hash && memcmp(p->hash, r->hash, 32) == 0 && p->size == r->size && p->mode == r->mode && p->mtime == r->mtime)) continue;
    if (strtab_get(&grouped, rel, len) >= 0) continue;
    c.vouched[i] = (int32_t)k;
    nlinks++;
  }

  /* The links, on background threads. */
  napi_value links, link_at_ab, link_at;
  void *link_at_data;
  napi_create_arraybuffer(env, nlinks * sizeof(uint32_t), &link_at_data, &link_at_ab);
  napi_create_typedarray(env, napi_uint32_array, nlinks, link_at_ab, 0, &link_at);
  napi_get_null(env, &links);
  if (nlinks) {
    b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->from_fd = -1;
    b->to_fd = stage_fd;
    stage_fd = -1; /* the batch closes it */
    b->count = (uint32_t)nlinks;
    b->threads = threads;
    b->rels = malloc(nlinks * sizeof(char *));
    b->errs = calloc(nlinks, sizeof(int32_t));
    if (!b->rels || !b->errs) goto oom;
    int fd = dir_fd_arg(env, argv[4]);
    if (fd == -2) {
      result = NULL;
      goto done;
    }
    if (fd < 0) {
      result = throw_code(env, "classify: parent snapshot folder", errno);
      goto done;
    }
    b->from_fd = fd;
    /* The batch owns a copy of the names it links (the entry list goes to JavaScript below). */
    size_t total = 0;
    for (size_t i = 0; i < c.n; i++) if (c.vouched[i] >= 0) total += strlen(c.rels + c.rel_at[i]) + 1;
    if (!(b->buf = malloc(total))) goto oom;
    size_t j = 0, off = 0;
    for (size_t i = 0; i < c.n; i++) {
      if (c.vouched[i] < 0) continue;
      size_t len = strlen(c.rels + c.rel_at[i]) + 1;
      memcpy(b->buf + off, c.rels + c.rel_at[i], len);
      b->rels[j] = b->buf + off;
      ((uint32_t *)link_at_data)[j++] = (uint32_t)i;
      off += len;
    }
    links = batch_launch(env, b);
    b = NULL;
  }

  /* Everything JavaScript needs, in walk order. */
  napi_value rels, types_ab, types, v_ab, vouched, s_ab, stats;
  void *data;
  napi_create_array_with_length(env, c.n, &rels);
  for (size_t i = 0; i < c.n; i++) {
    napi_value s;
    jvs_create_name(env, c.rels + c.rel_at[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, rels, (uint32_t)i, s);
  }
  napi_create_arraybuffer(env, c.n, &data, &types_ab);
  if (c.n) memcpy(data, c.types, c.n);
  napi_create_typedarray(env, napi_uint8_array, c.n, types_ab, 0, &types);
  napi_create_arraybuffer(env, c.n * sizeof(int32_t), &data, &v_ab);
  if (c.n) memcpy(data, c.vouched, c.n * sizeof(int32_t));
  napi_create_typedarray(env, napi_int32_array, c.n, v_ab, 0, &vouched);
  napi_create_arraybuffer(env, c.n * SCAN_FIELDS * sizeof(int64_t), &data, &s_ab);
  if (c.n) memcpy(data, c.stats, c.n * SCAN_FIELDS * sizeof(int64_t));
  napi_create_typedarray(env, napi_bigint64_array, c.n * SCAN_FIELDS, s_ab, 0, &stats);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "rels", rels);
  napi_set_named_property(env, result, "types", types);
  napi_set_named_property(env, result, "vouched", vouched);
  napi_set_named_property(env, result, "stats", stats);
  napi_set_named_property(env, result, "links", links);
  napi_set_named_property(env, result, "linkAt", link_at);
  napi_value records;
  napi_create_double(env, (double)sn, &records);
  napi_set_named_property(env, result, "records", records);
  goto done;
oom:
  result = throw_code(env, "classify", ENOMEM);
done:
  if (b) {
    b->joined = 1;
    batch_free(env, b, NULL);
  }
  if (stage_fd >= 0) close(stage_fd);
  classify_free(&c);
  strtab_free(&stab);
  strtab_free(&ptab);
  strtab_free(&grouped);
  if (prec != srec) free(prec);
  free(srec);
  return result;
}

/*
 * restorePlan(scan, target, state, probeNs) -> result | null
 *
 * An incremental restore's per-entry decision, natively. `scan` is the worktree's
 * finished whole-tree scan (scanTreeStart), `target` the snapshot's manifest chunks and
 * `state` the worktree state's (null: none), concatenated, as classify takes them.
 *   vouched[i]   for the manifest's entry i: the state record index that vouches the
 *                worktree file already holds it (a lone regular file of the same size,
 *                permission bits and mtime, whose record has the target's hash and a
 *                stat equal to the scan's, both times older than probeNs), else -1;
 *                exactly the fast path of applyTree with restoreKnowledge's answer
 *   destIndex[i] the scanned entry at that path that stays (-1: none, a special file, or
 *                one listed for removal)
 *   destStats    SCAN_FIELDS values per scanned entry, in walk order
 *   removeRels, removeTypes
 *                scanned entries to remove, in walk order: absent from the manifest, of
 *                another type, or a temp file of an interrupted run (".jvs-tmp-" in the
 *                name); nothing below a removed folder is listed. Special files are
 *                left alone, as the JavaScript walk leaves them.
 * Null when the chunks cannot be parsed (the caller takes the JavaScript path).
 */
static napi_value restore_plan(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *ext = NULL, *target = NULL, *state = NULL;
  size_t target_len = 0, state_len = 0;
  int64_t probe = 0;
  bool lossless;
  napi_valuetype st_type;
  if (argc != 4 || napi_get_value_external(env, argv[0], &ext) != napi_ok || !ext ||
      napi_get_buffer_info(env, argv[1], &target, &target_len) != napi_ok ||
      napi_typeof(env, argv[2], &st_type) != napi_ok ||
      (st_type != napi_null && napi_get_buffer_info(env, argv[2], &state, &state_len) != napi_ok) ||
      napi_get_value_bigint_int64(env, argv[3], &probe, &lossless) != napi_ok)
    return napi_throw_type_error(env, NULL, "restorePlan(scan, target, state, probeNs)"), NULL;
  struct tree_scan *t = ext;
  tree_join(t);
  if (t->err) return throw_code(env, t->err_path ? t->err_path : t->root, t->err);

  napi_value result;
  napi_get_null(env, &result);
  struct rec *trec = NULL, *srec = NULL;
  size_t tn = 0, sn = 0;
  struct strtab ttab = {0}, stab = {0}, dtab = {0};
  struct classify_out c = {0};
  int32_t *vouched = NULL, *dest_index = NULL;
  size_t *removals = NULL, nrem = 0;
  if (parse_records(target, target_len, &trec, &tn)) goto done;
  if (state && parse_records(state, state_len, &srec, &sn)) goto done;
  int err = walk_order(t, &c);
  if (err) {
    result = throw_code(env, "restorePlan", err);
    goto done;
  }
  if (strtab_init(&ttab, tn) || strtab_init(&stab, sn) || strtab_init(&dtab, c.n)) goto oom;
  vouched = malloc((tn ? tn : 1) * sizeof *vouched);
  dest_index = malloc((tn ? tn : 1) * sizeof *dest_index);
  removals = malloc((c.n ? c.n : 1) * sizeof *removals);
  if (!vouched || !dest_index || !removals) goto oom;
  for (size_t i = 0; i < tn; i++) strtab_put(&ttab, trec[i].rel, trec[i].rel_len, (uint32_t)i);
  for (size_t i = 0; i < sn; i++) strtab_put(&stab, srec[i].rel, srec[i].rel_len, (uint32_t)i);

  /* Removals, in walk order; a removed folder takes its subtree. */
  const char *removed_dir = NULL;
  size_t removed_len = 0;
  for (size_t i = 0; i < c.n; i++) {
    const char *rel = c.rels + c.rel_at[i];
    size_t len = strlen(rel);
    if (removed_dir && len > removed_len && rel[removed_len] == '/' && memcmp(rel, removed_dir, removed_len) == 0) continue;
    removed_dir = NULL;
    if (c.types[i] == 3) continue;
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    int64_t k = strtab_get(&ttab, rel, len);
    if (k < 0 || trec[k].type != c.types[i] || strstr(base, ".jvs-tmp-")) {
      removals[nrem++] = i;
      if (c.types[i] == 0) {
        removed_dir = rel;
        removed_len = len;
      }
      continue;
    }
    strtab_put(&dtab, rel, (uint32_t)len, (uint32_t)i); /* kept: what the manifest's entry finds there */
  }

  for (size_t i = 0; i < tn; i++) {
    const struct rec *tr = &trec[i];
    int64_t d = strtab_get(&dtab, tr->rel, tr->rel_len);
    dest_index[i] = (int32_t)d;
    vouched[i] = -1;
    if (d < 0 || tr->type != 1 || tr->link_of || !tr->has_hash || c.types[d] != 1) continue;
    const int64_t *st = c.stats + d * SCAN_FIELDS;
    if (st[JVS_STAT_NLINK] != 1 || (double)st[JVS_STAT_SIZE] != tr->size || (uint16_t)(st[JVS_STAT_MODE] & 07777) != tr->mode || st[JVS_STAT_MTIME] != tr->mtime) continue;
    int64_t k = strtab_get(&stab, tr->rel, tr->rel_len);
    if (k < 0) continue;
    const struct rec *r = &srec[k];
    if (r->type != 1 || !r->has_hash || r->link_of || memcmp(r->hash, tr->hash, 32) != 0) continue;
    if (r->ctime < probe && r->mtime < probe && r->ctime == st[JVS_STAT_CTIME] && r->mtime == st[JVS_STAT_MTIME] &&
        r->ino == (uint64_t)st[JVS_STAT_INO] && r->dev == (uint64_t)st[JVS_STAT_DEV] && r->size == (double)st[JVS_STAT_SIZE] &&
        r->mode == (uint16_t)(st[JVS_STAT_MODE] & 07777))
      vouched[i] = (int32_t)k;
  }

  napi_value v, di, ds, rr, rt, ab;
  void *data;
  napi_create_arraybuffer(env, tn * sizeof(int32_t), &data, &ab);
  if (tn) memcpy(data, vouched, tn * sizeof(int32_t));
  napi_create_typedarray(env, napi_int32_array, tn, ab, 0, &v);
  napi_create_arraybuffer(env, tn * sizeof(int32_t), &data, &ab);
  if (tn) memcpy(data, dest_index, tn * sizeof(int32_t));
  napi_create_typedarray(env, napi_int32_array, tn, ab, 0, &di);
  napi_create_arraybuffer(env, c.n * SCAN_FIELDS * sizeof(int64_t), &data, &ab);
  if (c.n) memcpy(data, c.stats, c.n * SCAN_FIELDS * sizeof(int64_t));
  napi_create_typedarray(env, napi_bigint64_array, c.n * SCAN_FIELDS, ab, 0, &ds);
  napi_create_array_with_length(env, nrem, &rr);
  napi_create_arraybuffer(env, nrem, &data, &ab);
  for (size_t j = 0; j < nrem; j++) {
    napi_value s;
    jvs_create_name(env, c.rels + c.rel_at[removals[j]], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, rr, (uint32_t)j, s);
    ((uint8_t *)data)[j] = c.types[removals[j]];
  }
  napi_create_typedarray(env, napi_uint8_array, nrem, ab, 0, &rt);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "vouched", v);
  napi_set_named_property(env, result, "destIndex", di);
  napi_set_named_property(env, result, "destStats", ds);
  napi_set_named_property(env, result, "removeRels", rr);
  napi_set_named_property(env, result, "removeTypes", rt);
  goto done;
oom:
  result = throw_code(env, "restorePlan", ENOMEM);
done:
  free(vouched);
  free(dest_index);
  free(removals);
  classify_free(&c);
  strtab_free(&ttab);
  strtab_free(&stab);
  strtab_free(&dtab);
  free(trec);
  free(srec);
  return result;
}

napi_value jvs_tree_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"scanDirs", NULL, scan_dirs, NULL, NULL, NULL, napi_default, NULL},
    {"scanTreeStart", NULL, scan_tree_start, NULL, NULL, NULL, napi_default, NULL},
    {"scanTreeWait", NULL, scan_tree_wait, NULL, NULL, NULL, napi_default, NULL},
    {"scanTreeStats", NULL, scan_tree_stats, NULL, NULL, NULL, napi_default, NULL},
    {"linkStart", NULL, link_start, NULL, NULL, NULL, napi_default, NULL},
    {"linkWait", NULL, link_wait, NULL, NULL, NULL, napi_default, NULL},
    {"classify", NULL, classify, NULL, NULL, NULL, napi_default, NULL},
    {"restorePlan", NULL, restore_plan, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
