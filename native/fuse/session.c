/*
 * The N-API module jvs_fuse3: a libfuse 3 low-level session running on its own threads
 * inside the Node daemon process.
 *
 *   mount(mountpoint, currentRoot, snapshotsRoot, handler, options)
 *   unmount()                      exit the loop, unmount, join the threads
 *   gateHold() / gateRelease()     the consistent cut (JS thread; see ops.c)
 *   syncfs(): Promise              write the kernel's dirty pages of the mount back
 *   invalidateCurrent(): Promise   drop the kernel's entries, attributes and pages of
 *                                  everything under current/ that it knows
 *   openFds()                      O_PATH fds the inode table holds now
 *
 * Invariants: the session threads block every signal (Node handles them); the two
 * Promise functions run on libuv's pool, never on the JS thread, because what they ask
 * of the kernel may need requests answered (syncfs sends writes; the mount root's
 * opendir is answered in C); the /dev/fuse descriptor and fusermount's socket are
 * close-on-exec, so a child (the pre-snapshot hook) cannot keep a dead mount alive.
 */
#include "jvs_fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct fuse_session *jvs_se;
static pthread_t loop_thread;
static int loop_started;
static int want_writeback;
static int loop_mode; /* 0 hybrid, 1 libfuse single-threaded, 2 libfuse multi-threaded (see the loop below) */
static char mnt_path[PATH_MAX];
static int gate_ready;

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  if (want_writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    jvs_writeback = 1;
  }
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
  if (loop_mode == 0) conn->want &= ~FUSE_CAP_SPLICE_READ; /* see the loop below */
  /* 1 MiB requests: libfuse negotiates max_pages from max_write. */
  conn->max_write = 1 << 20;
}

/* --- the loop ------------------------------------------------------------------------
 *
 * Default (hybrid): one thread reads every request and serves it itself, as libfuse's
 * single-threaded loop does, except requests that may wait long, which go to a small
 * pool: fsync, fsyncdir, fallocate, reads of 128 KiB (readahead) and writes of 256 KiB
 * or more (bulk data: several in flight at once, and disk waits off the loop), and
 * changes that find the write gate held (a control-file snapshot or restore runs). A
 * change served inline holds the gate shared for its whole run (taken with trylock,
 * so the loop thread never waits for a cut). Measured
 * here: libfuse's multi-threaded loop hands each request of a single busy client (tar)
 * to another thread, and the wake-ups cost tar ~4x the system time of the one-thread
 * loop; untar of 10,000 files took 2-3x as long. The one-thread loop alone stalls every
 * request behind a held change or an fsync; the pool keeps those off it.
 * JVS_MOUNT_LOOP=multi / =single (session option `loop`) picks libfuse's own loops.
 * Splice reads from /dev/fuse are off: a spliced request lives in the reading thread's
 * pipe and could not be handed over. */

/* Opcodes and request layout of the kernel's FUSE protocol (linux/fuse.h, a stable
 * ABI; libfuse 3.14 does not install its copy of the header). */
enum {
  OP_SETATTR = 4, OP_SYMLINK = 6, OP_MKNOD = 8, OP_MKDIR = 9, OP_UNLINK = 10, OP_RMDIR = 11,
  OP_RENAME = 12, OP_LINK = 13, OP_OPEN = 14, OP_READ = 15, OP_WRITE = 16, OP_FSYNC = 20,
  OP_SETXATTR = 21, OP_REMOVEXATTR = 24, OP_FSYNCDIR = 30, OP_CREATE = 35,
  OP_FALLOCATE = 43, OP_RENAME2 = 45, OP_COPY_FILE_RANGE = 47,
};
#define IN_HEADER 40            /* sizeof(struct fuse_in_header) */
#define READ_SIZE_AT (IN_HEADER + 16) /* fuse_read_in.size */
#define BULK_READ (128u << 10)  /* the kernel's readahead comes in 128 KiB reads */
#define BULK_WRITE (256u << 10) /* the writeback cache sends up to 1 MiB; tar's small files far less */


typedef struct job { void (*fn)(void *); void *arg; struct job *next; } pool_job;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static pool_job *pool_head, *pool_tail;
static int pool_threads, pool_idle, pool_stop;
static pthread_t pool_tids[16];
#define POOL_MAX 16

static void *pool_main(void *arg) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&pool_mu);
  for (;;) {
    while (!pool_head && !pool_stop) {
      pool_idle++;
      pthread_cond_wait(&pool_cv, &pool_mu);
      pool_idle--;
    }
    if (!pool_head) break;
    pool_job *j = pool_head;
    pool_head = j->next;
    if (!pool_head) pool_tail = NULL;
    pthread_mutex_unlock(&pool_mu);
    j->fn(j->arg);
    free(j);
    pthread_mutex_lock(&pool_mu);
  }
  pthread_mutex_unlock(&pool_mu);
  return NULL;
}

int jvs_pool_run(void (*fn)(void *), void *arg) {
  pool_job *j = calloc(1, sizeof(*j));
  if (!j) return -1;
  j->fn = fn;
  j->arg = arg;
  pthread_mutex_lock(&pool_mu);
  if (pool_tail) pool_tail->next = j; else pool_head = j;
  pool_tail = j;
  if (pool_idle == 0 && pool_threads < POOL_MAX && pthread_create(&pool_tids[pool_threads], NULL, pool_main, NULL) == 0) pool_threads++;
  pthread_cond_signal(&pool_cv);
  pthread_mutex_unlock(&pool_mu);
  return 0;
}

static void pool_stop_all(void) {
  pthread_mutex_lock(&pool_mu);
  pool_stop = 1;
  pthread_cond_broadcast(&pool_cv);
  pthread_mutex_unlock(&pool_mu);
  for (int i = 0; i < pool_threads; i++) pthread_join(pool_tids[i], NULL);
  pool_threads = 0;
  pool_stop = 0;
}

static void process_owned_buf(void *arg) {
  struct fuse_buf *b = arg;
  fuse_session_process_buf(jvs_se, b);
  free(b->mem);
  free(b);
}

/* Hand the request in *buf to the pool; the loop reads the next one into a new buffer. */
static void defer(struct fuse_buf *buf) {
  struct fuse_buf *b = malloc(sizeof(*b));
  if (b) *b = *buf;
  if (!b || jvs_pool_run(process_owned_buf, b) < 0) {
    free(b);
    fuse_session_process_buf(jvs_se, buf); /* no memory: serve it here */
    return;
  }
  buf->mem = NULL; /* the pool owns it now; fuse_session_receive_buf allocates the next one */
}

static int is_change(uint32_t op) {
  switch (op) {
  case OP_SETATTR: case OP_SYMLINK: case OP_MKNOD: case OP_MKDIR: case OP_UNLINK: case OP_RMDIR:
  case OP_RENAME: case OP_LINK: case OP_OPEN: case OP_WRITE: case OP_SETXATTR: case OP_REMOVEXATTR:
  case OP_CREATE: case OP_FALLOCATE: case OP_RENAME2: case OP_COPY_FILE_RANGE:
    return 1;
  default:
    return 0;
  }
}

unsigned long jvs_dev_changes; /* changes read from /dev/fuse by the loop below */

static void loop_hybrid(void) {
  struct fuse_buf buf;
  memset(&buf, 0, sizeof(buf));
  while (!fuse_session_exited(jvs_se)) {
    int res = fuse_session_receive_buf(jvs_se, &buf);
    if (res == -EINTR) continue;
    if (res <= 0) break;
    if ((buf.flags & FUSE_BUF_IS_FD) || res < IN_HEADER) { /* not expected without splice: serve as is */
      fuse_session_process_buf(jvs_se, &buf);
      continue;
    }
    uint32_t op, len, rsize = 0;
    memcpy(&len, buf.mem, 4);
    memcpy(&op, (char *) buf.mem + 4, 4);
    if (is_change(op)) __atomic_add_fetch(&jvs_dev_changes, 1, __ATOMIC_RELAXED);
    if (op == OP_READ && (size_t) res >= READ_SIZE_AT + 4) memcpy(&rsize, (char *) buf.mem + READ_SIZE_AT, 4);
    if (op == OP_FSYNC || op == OP_FSYNCDIR || op == OP_FALLOCATE || rsize >= BULK_READ || (op == OP_WRITE && len >= BULK_WRITE)) {
      defer(&buf);
    } else if (is_change(op)) {
      if (pthread_rwlock_tryrdlock(&jvs_gate) == 0) {
        jvs_gate_held = 1;
        fuse_session_process_buf(jvs_se, &buf);
        jvs_gate_held = 0;
        pthread_rwlock_unlock(&jvs_gate);
      } else {
        defer(&buf);
      }
    } else {
      fuse_session_process_buf(jvs_se, &buf);
    }
  }
  free(buf.mem);
  pool_stop_all();
}

static void *loop_main(void *arg) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  if (loop_mode == 1) {
    fuse_session_loop(jvs_se);
  } else if (loop_mode == 2) {
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, 32);
    fuse_loop_cfg_set_idle_threads(cfg, 8);
    fuse_session_loop_mt(jvs_se, cfg);
    fuse_loop_cfg_destroy(cfg);
  } else {
    loop_hybrid();
  }
  return NULL;
}

#define FD_SCAN 4096
static void fds_open(unsigned char *map) {
  for (int fd = 0; fd < FD_SCAN; fd++) map[fd] = fcntl(fd, F_GETFD) != -1;
}
static void cloexec_new(const unsigned char *before) {
  for (int fd = 3; fd < FD_SCAN; fd++) {
    if (before[fd]) continue;
    int f = fcntl(fd, F_GETFD);
    if (f != -1) fcntl(fd, F_SETFD, f | FD_CLOEXEC);
  }
}

static int get_bool(napi_env env, napi_value o, const char *k) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, o, k, &v) == napi_ok) napi_get_value_bool(env, v, &b);
  return b;
}
static double get_num(napi_env env, napi_value o, const char *k, double dflt) {
  napi_value v;
  double d = dflt;
  napi_valuetype t;
  if (napi_get_named_property(env, o, k, &v) == napi_ok && napi_typeof(env, v, &t) == napi_ok && t == napi_number) napi_get_value_double(env, v, &d);
  return d;
}

static napi_value fail(napi_env env, const char *what, int err) {
  char msg[PATH_MAX + 128];
  snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value mount_(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return fail(env, "mount(mountpoint, currentRoot, snapshotsRoot, handler, options)", EINVAL);
  if (jvs_se) return fail(env, "a mount is already running in this process", EBUSY);
  char cur[PATH_MAX], snap[PATH_MAX];
  size_t n;
  napi_get_value_string_utf8(env, argv[0], mnt_path, sizeof(mnt_path), &n);
  napi_get_value_string_utf8(env, argv[1], cur, sizeof(cur), &n);
  napi_get_value_string_utf8(env, argv[2], snap, sizeof(snap), &n);
  napi_value o = argv[4];
  {
    char mode[16] = "";
    napi_value v;
    size_t ml;
    if (napi_get_named_property(env, o, "loop", &v) == napi_ok) napi_get_value_string_utf8(env, v, mode, sizeof(mode), &ml);
    loop_mode = strcmp(mode, "single") == 0 ? 1 : strcmp(mode, "multi") == 0 ? 2 : 0;
  }
  want_writeback = get_bool(env, o, "writeback");
  int uring = get_bool(env, o, "uring");
  jvs_switch_creds = get_bool(env, o, "switchCreds");
  jvs_xattrs = get_bool(env, o, "xattrs");
  jvs_current_timeout = get_num(env, o, "currentTimeout", 1.0);
  jvs_snapshot_timeout = get_num(env, o, "snapshotTimeout", 86400.0);

  int cfd = open(cur, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cfd < 0) return fail(env, cur, errno);
  int sfd = open(snap, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0) {
    close(cfd);
    return fail(env, snap, errno);
  }
  /* Bound the fd cache well below the limit: open files and Node need fds too. */
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  double bound = get_num(env, o, "maxFds", 0);
  if (bound <= 0) bound = rl.rlim_cur == RLIM_INFINITY ? 8192 : (double) rl.rlim_cur / 4;
  if (bound > 8192) bound = 8192;
  jvs_inodes_init(cfd, sfd, (int) bound);

  if (!gate_ready) {
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&jvs_gate, &a);
    pthread_rwlockattr_destroy(&a);
    gate_ready = 1;
  }

  /* default_permissions (the kernel checks modes against the attributes it holds) only
   * when other users reach the mount: each check needs fresh attributes, and every
   * change in a folder drops its attributes, so without it an untar saves a GETATTR of
   * the folder per file. Without allow_other the kernel lets only processes of the
   * mounting user in, and the daemon runs as that user (or as root, for root only):
   * the backing file system's own checks, made as the daemon, are the same ones, and
   * access() is answered by faccessat (ops.c). */
  int allow_other = get_bool(env, o, "allowOther");
  char opts[256];
  /* FUSE over io_uring (libfuse 3.18 built by scripts/build-fuse3.mjs; the kernel's
   * fuse.enable_uring on): after INIT the kernel hands requests to libfuse's ring threads,
   * one per CPU, instead of /dev/fuse reads; ops.c keeps them from waiting on the gate.
   * If the ring cannot start, libfuse goes on with /dev/fuse (the loop below). */
#ifdef FUSE_CAP_OVER_IO_URING
  const char *ring = uring ? ",io_uring" : "";
#else
  const char *ring = "";
  (void) uring;
#endif
  snprintf(opts, sizeof(opts), "fsname=jvs,subtype=jvs,auto_unmount%s%s", allow_other ? ",allow_other,default_permissions" : "", ring);
  char *args_v[] = { "jvs", "-o", opts, get_bool(env, o, "debug") ? "-d" : NULL, NULL };
  struct fuse_args args = FUSE_ARGS_INIT(args_v[3] ? 4 : 3, args_v);
  static struct fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof(ops));
  ops.init = ll_init;
  jvs_ops_install(&ops);
  if (jvs_virtual_start(env, argv[3]) < 0) return fail(env, "threadsafe function", EINVAL);
  jvs_se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
  if (!jvs_se) {
    jvs_virtual_stop();
    return fail(env, "fuse_session_new", EINVAL);
  }
  static unsigned char before[FD_SCAN];
  fds_open(before);
  if (fuse_session_mount(jvs_se, mnt_path) != 0) {
    fuse_session_destroy(jvs_se);
    jvs_se = NULL;
    jvs_virtual_stop();
    return fail(env, mnt_path, EIO);
  }
  cloexec_new(before);
  if (pthread_create(&loop_thread, NULL, loop_main, NULL) != 0) return fail(env, "pthread_create", errno);
  loop_started = 1;
  return NULL;
}

static napi_value unmount_(napi_env env, napi_callback_info info) {
  if (!jvs_se) return NULL;
  fuse_session_exit(jvs_se);
  fuse_session_unmount(jvs_se);
  if (loop_started) pthread_join(loop_thread, NULL);
  loop_started = 0;
  jvs_virtual_stop();
  fuse_session_destroy(jvs_se);
  jvs_se = NULL;
  return NULL;
}

static napi_value gate_hold(napi_env env, napi_callback_info info) {
  pthread_rwlock_wrlock(&jvs_gate);
  return NULL;
}

static napi_value gate_release(napi_env env, napi_callback_info info) {
  pthread_rwlock_unlock(&jvs_gate);
  return NULL;
}

/* What this build and session can do, and how requests arrived: { libfuse, uring (built
 * with FUSE over io_uring), ringRequests, ringDeferred (changes and syncs the ring
 * threads handed to the pool) }. */
extern unsigned long jvs_ring_requests, jvs_ring_deferred;
static napi_value transport(napi_env env, napi_callback_info info) {
  napi_value o, v;
  napi_create_object(env, &o);
  char ver[32];
  snprintf(ver, sizeof(ver), "%d.%d", FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION);
  napi_create_string_utf8(env, ver, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "libfuse", v);
#ifdef FUSE_CAP_OVER_IO_URING
  napi_get_boolean(env, true, &v);
#else
  napi_get_boolean(env, false, &v);
#endif
  napi_set_named_property(env, o, "uring", v);
  napi_create_double(env, (double) __atomic_load_n(&jvs_ring_requests, __ATOMIC_RELAXED), &v);
  napi_set_named_property(env, o, "ringRequests", v);
  napi_create_double(env, (double) __atomic_load_n(&jvs_ring_deferred, __ATOMIC_RELAXED), &v);
  napi_set_named_property(env, o, "ringDeferred", v);
  napi_create_double(env, (double) __atomic_load_n(&jvs_dev_changes, __ATOMIC_RELAXED), &v);
  napi_set_named_property(env, o, "devChanges", v);
  return o;
}

static napi_value open_fds(napi_env env, napi_callback_info info) {
  napi_value v;
  napi_create_int32(env, jvs_inodes_open_fds(), &v);
  return v;
}

/* --- work on libuv's pool ----------------------------------------------------------- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int kind; /* 0 syncfs, 1 invalidate current/ */
  int err;
} job_t;

typedef struct {
  fuse_ino_t nodeid, parent;
  char *name;
} inval_t;

typedef struct {
  inval_t *v;
  size_t n, cap;
} inval_list;

static void collect(jvs_inode *in, void *ctx) {
  inval_list *l = ctx;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 256;
    l->v = realloc(l->v, l->cap * sizeof(*l->v));
  }
  l->v[l->n].nodeid = in->nodeid;
  l->v[l->n].parent = in->parent ? in->parent->nodeid : 0;
  l->v[l->n].name = in->parent && in->name ? strdup(in->name) : NULL;
  l->n++;
}

/* Drop what the kernel caches for current/: every name it may hold (the table knows
 * each one: lookups are counted, and misses are never cached as negative entries),
 * then every inode's attributes and pages. */
static int invalidate_current(void) {
  inval_list l = { 0 };
  jvs_inodes_each(JVS_AREA_CURRENT, collect, &l);
  for (size_t i = 0; i < l.n; i++) {
    if (l.v[i].name) fuse_lowlevel_notify_inval_entry(jvs_se, l.v[i].parent, l.v[i].name, strlen(l.v[i].name));
  }
  for (size_t i = 0; i < l.n; i++) {
    fuse_lowlevel_notify_inval_inode(jvs_se, l.v[i].nodeid, 0, 0);
    free(l.v[i].name);
  }
  free(l.v);
  return 0;
}

static void job_execute(napi_env env, void *data) {
  job_t *j = data;
  if (!jvs_se) {
    j->err = ENOTCONN;
    return;
  }
  if (j->kind == 0) {
    int fd = open(mnt_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0) j->err = errno;
    if (fd >= 0) close(fd);
  } else {
    j->err = invalidate_current();
  }
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  if (j->err) {
    napi_value msg, e;
    napi_create_string_utf8(env, strerror(j->err), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &e);
    napi_reject_deferred(env, j->deferred, e);
  } else {
    napi_value u;
    napi_get_undefined(env, &u);
    napi_resolve_deferred(env, j->deferred, u);
  }
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value start_job(napi_env env, int kind) {
  job_t *j = calloc(1, sizeof(*j));
  j->kind = kind;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, kind ? "jvs-fuse-invalidate" : "jvs-fuse-syncfs", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value syncfs_(napi_env env, napi_callback_info info) { return start_job(env, 0); }
static napi_value invalidate_(napi_env env, napi_callback_info info) { return start_job(env, 1); }

NAPI_MODULE_INIT() {
  napi_property_descriptor d[] = {
    { "mount", NULL, mount_, NULL, NULL, NULL, napi_default, NULL },
    { "unmount", NULL, unmount_, NULL, NULL, NULL, napi_default, NULL },
    { "gateHold", NULL, gate_hold, NULL, NULL, NULL, napi_default, NULL },
    { "gateRelease", NULL, gate_release, NULL, NULL, NULL, napi_default, NULL },
    { "syncfs", NULL, syncfs_, NULL, NULL, NULL, napi_default, NULL },
    { "invalidateCurrent", NULL, invalidate_, NULL, NULL, NULL, napi_default, NULL },
    { "openFds", NULL, open_fds, NULL, NULL, NULL, napi_default, NULL },
    { "transport", NULL, transport, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d);
  jvs_dirty_exports(env, exports);
  return jvs_virtual_exports(env, exports);
}
