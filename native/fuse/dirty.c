/*
 * Dirty tracking of current/: which folders of the worktree may differ from the last
 * baseline scan, so a control-file snapshot re-reads only those (jvs_tree.c's
 * scanTreeStart takes the earlier scan and these lists; see src/fuse/dirtyWalk.ts).
 *
 * One inotify watch per folder of the worktree. inotify reports what any process on
 * this machine does through the VFS: writes through the mount (the daemon's own
 * syscalls on the backing files) and changes made behind the mount's back alike, so
 * there is one mechanism, not a record of our writes plus a guess about the rest.
 *
 *   dirtyStart(root)  watch every folder below root (each opened from its parent's fd
 *                     with O_NOFOLLOW and watched through its /proc/self/fd link: no
 *                     path string a user could redirect)
 *   dirtyTake()       -> { all, dirs, trees }: what changed since the last take, and a
 *                     new epoch starts. Pending events are drained first, so every
 *                     change whose system call returned before the take is in it.
 *                     dirs: folders whose own entries (names or stats) may differ;
 *                     trees: folders created or moved in, re-read with all below them;
 *                     all: nothing can be vouched for (queue overflow, a folder moved
 *                     within the tree, the root replaced, tracking off).
 *   dirtyStop()
 *
 * Invariants: a folder is left out of dirs/trees only if no event named it or a child
 * of it since the take that began the epoch; a folder's own stat change (entries added
 * or removed, chmod) also dirties its parent; a folder created or moved in is a tree,
 * watched only at the next take (until then it is read whole anyway); a folder once
 * dirty is muted (MUTED_MASK) for the rest of its epoch, and every watch is back to the
 * full mask inside the take, before the walk that take is for begins. Not seen, so not guaranteed (documented
 * in docs/mount.md): writes through a shared mmap that is still open (inotify reports
 * them at close), changes made by other machines to a network file system (tracking is
 * off on FUSE, NFS, CIFS/SMB, Ceph, 9p backings), and writes through a hard link in
 * another folder (jvs_tree.c never reuses a folder holding a file with several links).
 */
#include "jvs_fuse.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
/* A folder already dirty in this epoch only needs to say when a subfolder arrives (a
 * tree) or leaves (its watches would name wrong paths): an untar into it then costs
 * no event per file. The full mask comes back at the next take, before the walk. */
#define MUTED_MASK (IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define MAX_MARKS 100000 /* past this many dirty folders, re-reading everything is as cheap */

typedef struct { char **v; size_t n, cap; } strlist;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int ifd = -1, stop_fd = -1, on;
static pthread_t thr;
static int root_fd = -1;
static dev_t root_dev;
static ino_t root_ino;
static char **rel_of; /* wd -> folder rel ("" the root) */
static unsigned char *muted; /* wd -> dirty this epoch, watched with MUTED_MASK */
static size_t nrel;
static strlist dirs, trees;
static int all, rebuild;

static void list_add(strlist *l, const char *s) {
  if (all) return;
  for (size_t i = l->n; i > 0 && i + 8 > l->n; i--) if (strcmp(l->v[i - 1], s) == 0) return; /* cheap repeat check */
  if (l->n >= MAX_MARKS) { all = 1; return; }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **v = realloc(l->v, cap * sizeof(char *));
    if (!v) { all = 1; return; }
    l->v = v;
    l->cap = cap;
  }
  char *d = strdup(s);
  if (!d) { all = 1; return; }
  l->v[l->n++] = d;
}

static void list_clear(strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  l->n = 0;
}

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *p = malloc(la + lb + 2);
  if (!p) return NULL;
  if (la) { memcpy(p, a, la); p[la] = '/'; memcpy(p + la + 1, b, lb + 1); }
  else memcpy(p, b, lb + 1);
  return p;
}

/* The parent rel of a folder rel, in buf ("" for top-level folders); 0 for the root itself. */
static int parent_of(const char *rel, char *buf, size_t size) {
  if (!rel[0]) return 0;
  const char *slash = strrchr(rel, '/');
  size_t n = slash ? (size_t) (slash - rel) : 0;
  if (n >= size) n = size - 1;
  memcpy(buf, rel, n);
  buf[n] = '\0';
  return 1;
}

static void set_rel(int wd, const char *rel) {
  if (wd < 0) return;
  if ((size_t) wd >= nrel) {
    size_t n = nrel ? nrel : 256;
    while (n <= (size_t) wd) n *= 2;
    char **v = realloc(rel_of, n * sizeof(char *));
    if (!v) { all = 1; return; }
    memset(v + nrel, 0, (n - nrel) * sizeof(char *));
    rel_of = v;
    unsigned char *m = realloc(muted, n);
    if (!m) { all = 1; return; }
    memset(m + nrel, 0, n - nrel);
    muted = m;
    nrel = n;
  }
  free(rel_of[wd]);
  rel_of[wd] = strdup(rel);
  muted[wd] = 0;
}

/* The folder at rel below the root, opened without following any symlink; -1 if gone. */
static int open_rel(const char *rel) {
  struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
  return (int) syscall(SYS_openat2, root_fd, rel[0] ? rel : ".", &how, sizeof(how));
}

/* Change the mask of watch wd (folder rel); a different folder there now: nothing vouched. */
static void set_mask(int wd, const char *rel, uint32_t mask) {
  int fd = open_rel(rel);
  char pp[32];
  snprintf(pp, sizeof(pp), "/proc/self/fd/%d", fd);
  int got = fd >= 0 ? inotify_add_watch(ifd, pp, mask) : -1;
  if (fd >= 0) close(fd);
  if (got != wd) { all = 1; rebuild = 1; }
}

/* Watch the folder open as dfd (rel below the root) and every folder below it. */
static void watch_tree(int dfd, const char *rel) {
  char pp[32];
  snprintf(pp, sizeof(pp), "/proc/self/fd/%d", dfd);
  int wd = inotify_add_watch(ifd, pp, WATCH_MASK);
  if (wd < 0) { all = 1; rebuild = 1; close(dfd); return; } /* e.g. out of watches: nothing vouched */
  set_rel(wd, rel);
  DIR *d = fdopendir(dfd);
  if (!d) { close(dfd); all = 1; return; }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) continue;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    int c = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (c < 0) continue; /* not a folder after all, or gone */
    char *r = join(rel, de->d_name);
    if (r) watch_tree(c, r);
    else close(c);
    free(r);
  }
  closedir(d);
}

static void watch_all(void) {
  for (size_t i = 0; i < nrel; i++) { free(rel_of[i]); rel_of[i] = NULL; muted[i] = 0; }
  int d = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) { all = 1; return; }
  watch_tree(d, "");
}

static void handle(const struct inotify_event *ev) {
  if (ev->mask & IN_Q_OVERFLOW) { all = 1; return; }
  if (ev->mask & IN_IGNORED) {
    if (ev->wd >= 0 && (size_t) ev->wd < nrel) { free(rel_of[ev->wd]); rel_of[ev->wd] = NULL; }
    return;
  }
  const char *rel = ev->wd >= 0 && (size_t) ev->wd < nrel ? rel_of[ev->wd] : NULL;
  if (!rel) { all = 1; return; }
  char parent[PATH_MAX];
  if (ev->len == 0) {
    /* The watched folder itself: its own stat changed, or it went away or moved. */
    if (ev->mask & IN_MOVE_SELF && !rel[0]) { all = 1; rebuild = 1; }
    if (parent_of(rel, parent, sizeof(parent))) list_add(&dirs, parent);
    return;
  }
  if (!muted[ev->wd]) {
    /* First change in this folder this epoch: it is dirty, and so is its parent (the
     * folder's own times change with its entries); from now on it stays quiet. */
    list_add(&dirs, rel);
    if (parent_of(rel, parent, sizeof(parent))) list_add(&dirs, parent);
    muted[ev->wd] = 1;
    set_mask(ev->wd, rel, MUTED_MASK);
  }
  if (ev->mask & IN_ISDIR) {
    if (ev->mask & IN_MOVED_FROM) { all = 1; rebuild = 1; return; } /* its watches now name the wrong rels */
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
      /* Read whole by the next walk and watched at the next take, before that walk. */
      char *child = join(rel, ev->name);
      if (!child) { all = 1; return; }
      list_add(&trees, child);
      free(child);
    }
  }
}

/* Under mu: read and handle every event queued now. */
static void drain(void) {
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t n = read(ifd, buf, sizeof(buf));
    if (n <= 0) break;
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *) p;
      handle(ev);
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
}

static void *watch_main(void *arg) {
  sigset_t allsig;
  sigfillset(&allsig);
  pthread_sigmask(SIG_BLOCK, &allsig, NULL);
  struct pollfd p[2] = { { .fd = ifd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
  for (;;) {
    if (poll(p, 2, -1) < 0 && errno != EINTR) break;
    if (p[1].revents) break;
    if (p[0].revents) {
      pthread_mutex_lock(&mu);
      drain();
      pthread_mutex_unlock(&mu);
    }
  }
  return NULL;
}

/* File systems whose files other machines may change (inotify sees only this one). */
static int remote_fs(long type) {
  switch ((unsigned long) type) {
  case 0x65735546UL: /* FUSE (JuiceFS, sshfs, …) */
  case 0x6969UL:     /* NFS */
  case 0x517BUL:     /* SMB */
  case 0xFF534D42UL: /* CIFS */
  case 0xFE534D42UL: /* SMB2 */
  case 0x00C36400UL: /* Ceph */
  case 0x01021997UL: /* 9p */
  case 0x5346414FUL: /* AFS */
  case 0x47504653UL: /* GPFS */
  case 0x0BD00BD0UL: /* Lustre */
    return 1;
  default:
    return 0;
  }
}

static napi_value dirty_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char root[PATH_MAX];
  size_t n;
  napi_get_boolean(env, false, &res);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], root, sizeof(root), &n) != napi_ok || on) return res;
  int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct statfs sf;
  struct stat st;
  if (rfd < 0 || fstatfs(rfd, &sf) < 0 || remote_fs(sf.f_type) || fstat(rfd, &st) < 0) {
    if (rfd >= 0) close(rfd);
    return res; /* off: every take says all */
  }
  ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  stop_fd = eventfd(0, EFD_CLOEXEC);
  if (ifd < 0 || stop_fd < 0) {
    if (ifd >= 0) close(ifd);
    if (stop_fd >= 0) close(stop_fd);
    close(rfd);
    ifd = stop_fd = -1;
    return res;
  }
  pthread_mutex_lock(&mu);
  root_fd = rfd;
  root_dev = st.st_dev;
  root_ino = st.st_ino;
  all = 1; /* nothing is vouched for before the first take, which watches every folder */
  rebuild = 1;
  pthread_mutex_unlock(&mu);
  if (pthread_create(&thr, NULL, watch_main, NULL) != 0) return res;
  on = 1;
  napi_get_boolean(env, true, &res);
  return res;
}

static napi_value str_array(napi_env env, const strlist *l) {
  napi_value a, s;
  napi_create_array_with_length(env, l->n, &a);
  for (size_t i = 0; i < l->n; i++) {
    napi_create_string_utf8(env, l->v[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, a, (uint32_t) i, s);
  }
  return a;
}

static napi_value dirty_take(napi_env env, napi_callback_info info) {
  napi_value o, v;
  napi_create_object(env, &o);
  int was_all = 1;
  strlist empty = { 0 };
  if (on) {
    pthread_mutex_lock(&mu);
    drain();
    struct stat st;
    /* The payload folder replaced by another one: its watches see nothing. */
    if (fstatat(root_fd, "", &st, AT_EMPTY_PATH) < 0 || st.st_dev != root_dev || st.st_ino != root_ino) { all = 1; rebuild = 1; }
    was_all = all;
    napi_set_named_property(env, o, "dirs", str_array(env, all ? &empty : &dirs));
    napi_set_named_property(env, o, "trees", str_array(env, all ? &empty : &trees));
    /* The next epoch starts watched in full, before the walk this take is for: folders
     * back to the full mask, new folders (trees) watched. After `all` the lists may be
     * short (list_add stops recording), so everything is watched anew. */
    if (all) rebuild = 1;
    if (!rebuild) {
      for (size_t wd = 0; wd < nrel && !rebuild; wd++)
        if (muted[wd] && rel_of[wd]) {
          muted[wd] = 0;
          set_mask((int) wd, rel_of[wd], WATCH_MASK);
        }
      for (size_t i = 0; i < trees.n && !rebuild; i++) {
        int fd = open_rel(trees.v[i]);
        if (fd >= 0) watch_tree(fd, trees.v[i]); /* gone meanwhile: nothing to watch */
      }
    }
    list_clear(&dirs);
    list_clear(&trees);
    all = 0;
    if (rebuild) {
      rebuild = 0;
      watch_all();
    }
    pthread_mutex_unlock(&mu);
  } else {
    napi_set_named_property(env, o, "dirs", str_array(env, &empty));
    napi_set_named_property(env, o, "trees", str_array(env, &empty));
  }
  napi_get_boolean(env, was_all, &v);
  napi_set_named_property(env, o, "all", v);
  return o;
}

static napi_value dirty_stop(napi_env env, napi_callback_info info) {
  if (!on) return NULL;
  uint64_t one = 1;
  if (write(stop_fd, &one, sizeof(one)) < 0) { /* the thread then waits for close below */ }
  pthread_join(thr, NULL);
  pthread_mutex_lock(&mu);
  close(ifd);
  close(stop_fd);
  close(root_fd);
  ifd = stop_fd = root_fd = -1;
  for (size_t i = 0; i < nrel; i++) free(rel_of[i]);
  free(rel_of);
  free(muted);
  rel_of = NULL;
  muted = NULL;
  nrel = 0;
  list_clear(&dirs);
  list_clear(&trees);
  on = 0;
  pthread_mutex_unlock(&mu);
  return NULL;
}

napi_value jvs_dirty_exports(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    { "dirtyStart", NULL, dirty_start, NULL, NULL, NULL, napi_default, NULL },
    { "dirtyTake", NULL, dirty_take, NULL, NULL, NULL, napi_default, NULL },
    { "dirtyStop", NULL, dirty_stop, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d);
  return exports;
}
