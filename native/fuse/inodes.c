/*
 * The inode table of the low-level mount.
 *
 * Each C inode records the backing file's (dev, ino), its area, its parent inode and
 * its name there. While it is cached it also holds an O_PATH fd; the number of cached
 * fds is bounded (RLIMIT_NOFILE is finite: libfuse's passthrough_hp, which keeps one fd
 * per inode for ever, fails with EMFILE after ~20,000 lookups here). An evicted inode
 * is opened again from its parent's fd by name with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | O_NOFOLLOW), and the result must be the same (dev, ino), else
 * the request fails with ESTALE: a name swapped for a symlink or for another file is
 * never taken for the old one.
 *
 * Invariants:
 *   - One inode per (dev, ino, area): hard links share it, as the kernel expects.
 *   - An inode lives while nlookup > 0 or refs > 0 (children name it as their parent);
 *     the payload folder's inode lives for ever.
 *   - fd >= 0 exactly when the inode is on the LRU list; pinned inodes (pins > 0) are
 *     never evicted, so an fd handed out stays valid until unpinned.
 *   - Everything here runs under one mutex; re-resolution (rare) does its syscalls
 *     under it too, which keeps the eviction and resolution order simple.
 */
#include "jvs_fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t tab = PTHREAD_MUTEX_INITIALIZER;
static jvs_inode **by_key, **by_id;
static size_t nbuckets, count;
static uint64_t next_id;
static jvs_inode *lru_head, *lru_tail;
static int nfds, max_fds;
static int cur_root_fd = -1, snap_root_fd = -1;
static jvs_inode *cur_root;

int jvs_snap_root_fd(void) { return snap_root_fd; }
int jvs_cur_root_fd(void) { return cur_root_fd; }
int jvs_inodes_open_fds(void) { return nfds; }

static size_t key_hash(dev_t dev, ino_t ino, int area) {
  uint64_t h = (uint64_t) ino * 0x9E3779B97F4A7C15ull ^ (uint64_t) dev * 0xC2B2AE3D27D4EB4Full ^ (uint64_t) area;
  return (size_t) (h ^ (h >> 29)) & (nbuckets - 1);
}
static size_t id_hash(fuse_ino_t id) {
  uint64_t h = id * 0x9E3779B97F4A7C15ull;
  return (size_t) (h ^ (h >> 31)) & (nbuckets - 1);
}

static void insert(jvs_inode *in) {
  size_t k = key_hash(in->dev, in->ino, in->area), i = id_hash(in->nodeid);
  in->hnext = by_key[k];
  by_key[k] = in;
  in->nnext = by_id[i];
  by_id[i] = in;
  count++;
}

static void grow(void) {
  size_t old = nbuckets;
  jvs_inode **ok = by_key, **oi = by_id;
  nbuckets = old ? old * 2 : 1024;
  by_key = calloc(nbuckets, sizeof(*by_key));
  by_id = calloc(nbuckets, sizeof(*by_id));
  count = 0;
  for (size_t b = 0; b < old; b++) {
    for (jvs_inode *in = ok[b], *next; in; in = next) {
      next = in->hnext;
      insert(in);
    }
  }
  free(ok);
  free(oi);
}

static void unhash(jvs_inode *in) {
  jvs_inode **p = &by_key[key_hash(in->dev, in->ino, in->area)];
  while (*p && *p != in) p = &(*p)->hnext;
  if (*p) *p = in->hnext;
  p = &by_id[id_hash(in->nodeid)];
  while (*p && *p != in) p = &(*p)->nnext;
  if (*p) *p = in->nnext;
  count--;
}

static jvs_inode *find_key(dev_t dev, ino_t ino, int area) {
  for (jvs_inode *in = by_key[key_hash(dev, ino, area)]; in; in = in->hnext)
    if (in->ino == ino && in->dev == dev && in->area == area) return in;
  return NULL;
}

static void lru_unlink(jvs_inode *in) {
  if (in->lru_prev) in->lru_prev->lru_next = in->lru_next; else lru_head = in->lru_next;
  if (in->lru_next) in->lru_next->lru_prev = in->lru_prev; else lru_tail = in->lru_prev;
  in->lru_prev = in->lru_next = NULL;
}
static void lru_front(jvs_inode *in) {
  in->lru_next = lru_head;
  in->lru_prev = NULL;
  if (lru_head) lru_head->lru_prev = in;
  lru_head = in;
  if (!lru_tail) lru_tail = in;
}

/* Close the least recently used unpinned fds until under the bound. */
static void evict_locked(void) {
  jvs_inode *in = lru_tail;
  while (nfds > max_fds && in) {
    jvs_inode *prev = in->lru_prev;
    if (in->pins == 0 && in != cur_root) {
      lru_unlink(in);
      close(in->fd);
      in->fd = -1;
      nfds--;
    }
    in = prev;
  }
}

static void drop_locked(jvs_inode *in);

static int open_beneath(int dirfd, const char *name, uint64_t flags) {
  struct open_how how = { .flags = flags | O_NOFOLLOW | O_CLOEXEC, .mode = 0, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
  return (int) syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
}

static int valid_name(const char *name) {
  return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* The inode's fd, re-resolving it (and its parents) by name when evicted. */
static int resolve_locked(jvs_inode *in) {
  if (in->fd >= 0) {
    if (in != cur_root) {
      lru_unlink(in);
      lru_front(in);
    }
    return in->fd;
  }
  int base = in->parent ? resolve_locked(in->parent) : (in->area == JVS_AREA_SNAPSHOT ? snap_root_fd : cur_root_fd);
  if (base < 0) return base;
  int fd = open_beneath(base, in->name, O_PATH);
  if (fd < 0) return errno == ENOENT ? -ESTALE : -errno;
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_dev != in->dev || st.st_ino != in->ino) {
    close(fd);
    return -ESTALE;
  }
  in->fd = fd;
  nfds++;
  lru_front(in);
  return fd;
}

void jvs_inodes_init(int cur_fd, int snap_fd, int bound) {
  pthread_mutex_lock(&tab);
  cur_root_fd = cur_fd;
  snap_root_fd = snap_fd;
  max_fds = bound < 64 ? 64 : bound;
  next_id = JVS_C_INO_BASE;
  if (!nbuckets) grow();
  struct stat st;
  fstat(cur_fd, &st);
  cur_root = calloc(1, sizeof(*cur_root));
  cur_root->nodeid = next_id++;
  cur_root->dev = st.st_dev;
  cur_root->ino = st.st_ino;
  cur_root->type = st.st_mode & S_IFMT;
  cur_root->area = JVS_AREA_CURRENT;
  cur_root->top = 1;
  cur_root->fd = cur_fd;
  cur_root->refs = 1; /* lives for ever */
  cur_root->name = strdup("");
  insert(cur_root);
  pthread_mutex_unlock(&tab);
}

jvs_inode *jvs_inode_get(fuse_ino_t id) {
  if (id < JVS_C_INO_BASE) return NULL;
  pthread_mutex_lock(&tab);
  jvs_inode *in = by_id[id_hash(id)];
  while (in && in->nodeid != id) in = in->nnext;
  pthread_mutex_unlock(&tab);
  return in;
}

int jvs_inode_pin_fd(jvs_inode *in) {
  pthread_mutex_lock(&tab);
  int fd = resolve_locked(in);
  if (fd >= 0) {
    in->pins++;
    evict_locked();
  }
  pthread_mutex_unlock(&tab);
  return fd;
}

void jvs_inode_unpin(jvs_inode *in) {
  pthread_mutex_lock(&tab);
  in->pins--;
  drop_locked(in);
  evict_locked();
  pthread_mutex_unlock(&tab);
}

static void set_parent_locked(jvs_inode *in, jvs_inode *parent, const char *name) {
  if (in->parent != parent) {
    jvs_inode *old = in->parent;
    if (parent) parent->refs++;
    in->parent = parent;
    if (old) {
      old->refs--;
      drop_locked(old);
    }
  }
  if (!in->name || strcmp(in->name, name) != 0) {
    free(in->name);
    in->name = strdup(name);
  }
}

jvs_inode *jvs_inode_lookup(jvs_inode *parent, int area, const char *name, struct stat *st, int *err) {
  if (!parent && area == JVS_AREA_CURRENT && name[0] == '\0') {
    pthread_mutex_lock(&tab);
    int r = fstat(cur_root_fd, st);
    cur_root->nlookup++;
    pthread_mutex_unlock(&tab);
    if (r < 0) *err = errno;
    return r < 0 ? NULL : cur_root;
  }
  if (!valid_name(name)) {
    *err = EINVAL;
    return NULL;
  }
  int base = parent ? jvs_inode_pin_fd(parent) : (area == JVS_AREA_SNAPSHOT ? snap_root_fd : cur_root_fd);
  if (base < 0) {
    *err = -base;
    return NULL;
  }
  int fd = open_beneath(base, name, O_PATH);
  int e = errno;
  if (fd < 0) {
    if (parent) jvs_inode_unpin(parent);
    /* A symlink met during resolution, or a name leaving the tree: not there for us. */
    *err = (e == ELOOP || e == EXDEV) ? ENOENT : e;
    return NULL;
  }
  if (fstat(fd, st) < 0) {
    *err = errno;
    close(fd);
    if (parent) jvs_inode_unpin(parent);
    return NULL;
  }
  pthread_mutex_lock(&tab);
  if (parent) parent->pins--; /* still referenced by the kernel's lookup for this request */
  jvs_inode *in = find_key(st->st_dev, st->st_ino, area);
  if (in) {
    if (in->fd < 0) {
      in->fd = fd;
      nfds++;
      lru_front(in);
    } else {
      close(fd);
      if (in != cur_root) {
        lru_unlink(in);
        lru_front(in);
      }
    }
    if (in != cur_root) set_parent_locked(in, parent, name);
  } else {
    if (count >= nbuckets) grow();
    in = calloc(1, sizeof(*in));
    in->nodeid = next_id++;
    in->dev = st->st_dev;
    in->ino = st->st_ino;
    in->type = st->st_mode & S_IFMT;
    in->area = area;
    in->top = parent == NULL;
    in->fd = fd;
    nfds++;
    set_parent_locked(in, parent, name);
    insert(in);
    lru_front(in);
  }
  in->nlookup++;
  evict_locked();
  pthread_mutex_unlock(&tab);
  return in;
}

static void drop_locked(jvs_inode *in) {
  while (in && in->nlookup == 0 && in->refs == 0 && in->pins == 0) {
    jvs_inode *parent = in->parent;
    unhash(in);
    if (in->fd >= 0) {
      lru_unlink(in);
      close(in->fd);
      nfds--;
    }
    free(in->name);
    free(in);
    if (parent) parent->refs--;
    in = parent;
  }
}

void jvs_inode_forget(fuse_ino_t id, uint64_t n) {
  if (id < JVS_C_INO_BASE) return;
  pthread_mutex_lock(&tab);
  jvs_inode *in = by_id[id_hash(id)];
  while (in && in->nodeid != id) in = in->nnext;
  if (in) {
    in->nlookup = n > in->nlookup ? 0 : in->nlookup - n;
    drop_locked(in);
  }
  pthread_mutex_unlock(&tab);
}

void jvs_inode_moved(dev_t dev, ino_t ino, int area, jvs_inode *newparent, const char *newname) {
  pthread_mutex_lock(&tab);
  jvs_inode *in = find_key(dev, ino, area);
  if (in && in != cur_root) set_parent_locked(in, newparent, newname);
  pthread_mutex_unlock(&tab);
}

void jvs_inodes_each(int area, void (*fn)(jvs_inode *in, void *ctx), void *ctx) {
  pthread_mutex_lock(&tab);
  for (size_t b = 0; b < nbuckets; b++)
    for (jvs_inode *in = by_id[b]; in; in = in->nnext)
      if (in->area == area) fn(in, ctx);
  pthread_mutex_unlock(&tab);
}
