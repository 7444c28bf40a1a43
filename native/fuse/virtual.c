/*
 * Virtual inodes: the mount root, .jvs/, the snapshot name table (tags, HEAD) and the
 * control files are answered by TypeScript (src/fuse/lowlevelAdapter.ts), which keeps
 * their semantics in one place, beside the CLI's operations they call.
 *
 * A worker thread never waits for JavaScript: it copies the request's arguments into a
 * message, queues it on a N-API threadsafe function and returns to the kernel. The JS
 * thread handles the message (possibly asynchronously: a control-file snapshot takes as
 * long as the snapshot) and answers with one of the reply functions exported here,
 * which call fuse_reply_* directly (libfuse allows replies from any thread).
 *
 * Invariants: every queued request is answered exactly once (by JS, or with EIO here
 * when the queue is closed); the request handle JS holds is not used after its reply
 * (the adapter guards it); data of a write is copied before the worker returns.
 */
#include "jvs_fuse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  fuse_req_t req;
  const char *op;
  fuse_ino_t ino;
  char *name;
  char *data;
  size_t size;
  uint64_t a, b;
  uint64_t fh;
  int flags;
} vmsg;

static napi_threadsafe_function tsfn;
static pthread_mutex_t tsfn_lock = PTHREAD_MUTEX_INITIALIZER;

static void free_msg(vmsg *m) {
  free(m->name);
  free(m->data);
  free(m);
}

void jvs_virtual_dispatch(fuse_req_t req, const char *op, fuse_ino_t ino, const char *name, const void *data, size_t size, uint64_t a, uint64_t b, struct fuse_file_info *fi) {
  vmsg *m = calloc(1, sizeof(*m));
  m->req = req;
  m->op = op;
  m->ino = ino;
  m->name = name ? strdup(name) : NULL;
  if (data) {
    m->data = malloc(size ? size : 1);
    memcpy(m->data, data, size);
  }
  m->size = size;
  m->a = a;
  m->b = b;
  if (fi) {
    m->fh = fi->fh;
    m->flags = fi->flags;
  }
  pthread_mutex_lock(&tsfn_lock);
  napi_status s = tsfn ? napi_call_threadsafe_function(tsfn, m, napi_tsfn_nonblocking) : napi_closing;
  pthread_mutex_unlock(&tsfn_lock);
  if (s != napi_ok) {
    fuse_reply_err(req, EIO);
    free_msg(m);
  }
}

static void set_num(napi_env env, napi_value o, const char *k, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, o, k, x);
}

/* On the JS thread: one message becomes one call of the handler with a plain object. */
static void call_js(napi_env env, napi_value cb, void *ctx, void *data) {
  vmsg *m = data;
  if (env == NULL || cb == NULL) {
    fuse_reply_err(m->req, EIO);
    free_msg(m);
    return;
  }
  napi_value o, v, undef;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, m->op, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "op", v);
  napi_create_external(env, m->req, NULL, NULL, &v);
  napi_set_named_property(env, o, "req", v);
  set_num(env, o, "ino", (double) m->ino);
  set_num(env, o, "a", (double) m->a);
  set_num(env, o, "b", (double) m->b);
  set_num(env, o, "fh", (double) m->fh);
  set_num(env, o, "flags", (double) m->flags);
  if (m->name) {
    napi_create_string_utf8(env, m->name, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, o, "name", v);
  }
  if (m->data) {
    void *copy;
    napi_create_buffer_copy(env, m->size, m->data, &copy, &v);
    napi_set_named_property(env, o, "data", v);
  }
  napi_get_undefined(env, &undef);
  if (napi_call_function(env, undef, cb, 1, &o, NULL) != napi_ok) {
    /* The adapter catches its own errors; an exception here is a defect, not a reply. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    fprintf(stderr, "jvs mount: the virtual-inode handler threw on %s\n", m->op);
  }
  free_msg(m);
}

int jvs_virtual_start(napi_env env, napi_value handler) {
  napi_value name;
  napi_create_string_utf8(env, "jvs-fuse-virtual", NAPI_AUTO_LENGTH, &name);
  napi_threadsafe_function f;
  if (napi_create_threadsafe_function(env, handler, NULL, name, 0, 1, NULL, NULL, NULL, call_js, &f) != napi_ok) return -1;
  pthread_mutex_lock(&tsfn_lock);
  tsfn = f;
  pthread_mutex_unlock(&tsfn_lock);
  return 0;
}

void jvs_virtual_stop(void) {
  pthread_mutex_lock(&tsfn_lock);
  if (tsfn) napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
  tsfn = NULL;
  pthread_mutex_unlock(&tsfn_lock);
}

/* --- replies (JS thread) ------------------------------------------------------------ */

#define ARGS(n) \
  size_t argc = n; \
  napi_value argv[n]; \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL); \
  fuse_req_t req; \
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **) &req) != napi_ok) { \
    napi_throw_type_error(env, NULL, "the first argument must be a request"); \
    return NULL; \
  }

static double num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

/* attr: Float64Array [ino, mode, nlink, uid, gid, size, blocks, blksize, rdev,
 *                     atime s, ns, mtime s, ns, ctime s, ns] */
static int read_attr(napi_env env, napi_value v, struct stat *st) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, NULL, NULL) != napi_ok || t != napi_float64_array || len < 15) return -1;
  double *a = data;
  memset(st, 0, sizeof(*st));
  st->st_ino = (ino_t) a[0];
  st->st_mode = (mode_t) a[1];
  st->st_nlink = (nlink_t) a[2];
  st->st_uid = (uid_t) a[3];
  st->st_gid = (gid_t) a[4];
  st->st_size = (off_t) a[5];
  st->st_blocks = (blkcnt_t) a[6];
  st->st_blksize = (blksize_t) a[7];
  st->st_rdev = (dev_t) a[8];
  st->st_atim.tv_sec = (time_t) a[9];
  st->st_atim.tv_nsec = (long) a[10];
  st->st_mtim.tv_sec = (time_t) a[11];
  st->st_mtim.tv_nsec = (long) a[12];
  st->st_ctim.tv_sec = (time_t) a[13];
  st->st_ctim.tv_nsec = (long) a[14];
  return 0;
}

static napi_value reply_err(napi_env env, napi_callback_info info) {
  ARGS(2)
  fuse_reply_err(req, (int) num(env, argv[1]));
  return NULL;
}

/* replyEntry(req, nodeid, attr, timeout) */
static napi_value reply_entry(napi_env env, napi_callback_info info) {
  ARGS(4)
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  if (read_attr(env, argv[2], &e.attr) < 0) {
    fuse_reply_err(req, EIO);
    return NULL;
  }
  e.ino = (fuse_ino_t) num(env, argv[1]);
  e.attr_timeout = e.entry_timeout = num(env, argv[3]);
  fuse_reply_entry(req, &e);
  return NULL;
}

/* replyAttr(req, attr, timeout) */
static napi_value reply_attr(napi_env env, napi_callback_info info) {
  ARGS(3)
  struct stat st;
  if (read_attr(env, argv[1], &st) < 0) fuse_reply_err(req, EIO);
  else fuse_reply_attr(req, &st, num(env, argv[2]));
  return NULL;
}

static napi_value reply_readlink(napi_env env, napi_callback_info info) {
  ARGS(2)
  char buf[PATH_MAX];
  size_t n;
  napi_get_value_string_utf8(env, argv[1], buf, sizeof(buf), &n);
  fuse_reply_readlink(req, buf);
  return NULL;
}

/* replyOpen(req, fh, flags): flags bit 0 direct_io, bit 1 keep_cache */
static napi_value reply_open(napi_env env, napi_callback_info info) {
  ARGS(3)
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t) num(env, argv[1]);
  int flags = (int) num(env, argv[2]);
  fi.direct_io = (flags & 1) != 0;
  fi.keep_cache = (flags & 2) != 0;
  fuse_reply_open(req, &fi);
  return NULL;
}

static napi_value reply_buf(napi_env env, napi_callback_info info) {
  ARGS(2)
  void *data;
  size_t len;
  napi_get_buffer_info(env, argv[1], &data, &len);
  fuse_reply_buf(req, data, len);
  return NULL;
}

static napi_value reply_write(napi_env env, napi_callback_info info) {
  ARGS(2)
  fuse_reply_write(req, (size_t) num(env, argv[1]));
  return NULL;
}

/* replyDirents(req, names, inos (Float64Array), modes (Uint32Array), off, size, plus):
 * entries from index `off` on, as many as fit in `size` bytes; for readdirplus in its
 * format, without entries (nodeid 0: the kernel looks names up itself). */
static napi_value reply_dirents(napi_env env, napi_callback_info info) {
  ARGS(7)
  bool plus = false;
  napi_get_value_bool(env, argv[6], &plus);
  uint32_t count;
  napi_get_array_length(env, argv[1], &count);
  napi_typedarray_type t;
  size_t n1, n2;
  void *inos, *modes;
  napi_get_typedarray_info(env, argv[2], &t, &n1, &inos, NULL, NULL);
  napi_get_typedarray_info(env, argv[3], &t, &n2, &modes, NULL, NULL);
  size_t off = (size_t) num(env, argv[4]);
  size_t size = (size_t) num(env, argv[5]);
  char *buf = malloc(size ? size : 1);
  size_t used = 0;
  for (size_t i = off; i < count && i < n1 && i < n2; i++) {
    napi_value v;
    napi_get_element(env, argv[1], (uint32_t) i, &v);
    char name[NAME_MAX + 1];
    size_t len;
    napi_get_value_string_utf8(env, v, name, sizeof(name), &len);
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_ino = (ino_t) ((double *) inos)[i];
    st.st_mode = ((uint32_t *) modes)[i];
    size_t need;
    if (plus) {
      struct fuse_entry_param e;
      memset(&e, 0, sizeof(e));
      e.attr = st;
      need = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t) (i + 1));
    } else {
      need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t) (i + 1));
    }
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
  return NULL;
}

napi_value jvs_virtual_exports(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    { "replyErr", NULL, reply_err, NULL, NULL, NULL, napi_default, NULL },
    { "replyEntry", NULL, reply_entry, NULL, NULL, NULL, napi_default, NULL },
    { "replyAttr", NULL, reply_attr, NULL, NULL, NULL, napi_default, NULL },
    { "replyReadlink", NULL, reply_readlink, NULL, NULL, NULL, napi_default, NULL },
    { "replyOpen", NULL, reply_open, NULL, NULL, NULL, napi_default, NULL },
    { "replyBuf", NULL, reply_buf, NULL, NULL, NULL, napi_default, NULL },
    { "replyWrite", NULL, reply_write, NULL, NULL, NULL, napi_default, NULL },
    { "replyDirents", NULL, reply_dirents, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d);
  return exports;
}
