/*
 * JVS mount on libfuse 3's low-level API: shared declarations.
 *
 * Files, one concern each:
 *   inodes.c   the inode table (nodeid -> backing file), lookup counts, the bounded
 *              LRU cache of O_PATH fds and the safe re-resolution of evicted inodes
 *   ops.c      current/ and snapshot trees served in C (passthrough, no path strings)
 *   virtual.c  inodes served by TypeScript (root, .jvs/, the name table, control
 *              files): requests handed to the JS thread, replies coming back from it
 *   dirty.c    dirty tracking of current/ (inotify per folder) for control-file snapshots
 *   session.c  the N-API module: mount, session threads, unmount, the write gate,
 *              syncfs of the mount and cache invalidation
 *
 * Invariants (every file keeps them):
 *   - No request resolves a path string. A C inode holds (parent inode, name) and, while
 *     cached, an O_PATH fd; every name is resolved relative to its parent's fd with
 *     openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and the result's (dev, ino) must
 *     match what the inode recorded, else ESTALE. A symlink inside the tree is never
 *     followed by the daemon; the kernel follows the mount's own links.
 *   - Nodeids below JVS_C_INO_BASE are virtual (TypeScript answers them); at and above
 *     it they are C inodes. FUSE_ROOT_ID (1) is virtual.
 *   - A C inode lives while the kernel holds lookups on it or a child holds it as its
 *     parent; its fd may be closed (evicted) at any time it is not pinned.
 *   - Snapshot trees are immutable: every change is EROFS, write bits are stripped, the
 *     snapshot folder's .READY marker is hidden.
 *   - Mutations of current/ hold the write gate shared; a control-file snapshot or
 *     restore holds it exclusively (the consistent cut).
 */
#ifndef JVS_FUSE_H
#define JVS_FUSE_H

#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define JVS_C_INO_BASE ((fuse_ino_t) 1 << 32)

enum jvs_area { JVS_AREA_CURRENT = 1, JVS_AREA_SNAPSHOT = 2 };

typedef struct jvs_inode {
  fuse_ino_t nodeid;
  dev_t dev;
  ino_t ino;
  mode_t type;              /* S_IFMT bits of the backing file */
  int area;
  int top;                  /* the payload folder or a snapshot folder (no C parent) */
  int fd;                   /* O_PATH fd, or -1 when evicted */
  int pins;                 /* users of fd right now; never evicted while > 0 */
  uint64_t nlookup;         /* the kernel's lookup count */
  uint64_t refs;            /* children holding this inode as their parent */
  struct jvs_inode *parent; /* NULL for top inodes */
  char *name;               /* name in parent (or in the snapshots folder for top inodes) */
  struct jvs_inode *hnext;  /* (dev, ino, area) hash chain */
  struct jvs_inode *nnext;  /* nodeid hash chain */
  struct jvs_inode *lru_prev, *lru_next; /* cached-fd LRU, most recent first */
} jvs_inode;

/* inodes.c */
void jvs_inodes_init(int cur_root_fd, int snap_root_fd, int max_fds);
jvs_inode *jvs_inode_get(fuse_ino_t nodeid);             /* NULL: unknown or virtual */
int jvs_inode_pin_fd(jvs_inode *in);                      /* fd (pinned) or -errno */
void jvs_inode_unpin(jvs_inode *in);
/* Resolve `name` below `parent` (or a top folder when parent is NULL) and count one
 * lookup; fills st. Returns the inode or NULL with *err set. */
jvs_inode *jvs_inode_lookup(jvs_inode *parent, int area, const char *name, struct stat *st, int *err);
void jvs_inode_forget(fuse_ino_t nodeid, uint64_t n);
/* The file (dev, ino) of `area` now lives at newparent/newname (rename through the mount). */
void jvs_inode_moved(dev_t dev, ino_t ino, int area, jvs_inode *newparent, const char *newname);
/* Visit every C inode of `area` (under the table lock: fn must not call back in). */
void jvs_inodes_each(int area, void (*fn)(jvs_inode *in, void *ctx), void *ctx);
int jvs_inodes_open_fds(void);
int jvs_snap_root_fd(void);
int jvs_cur_root_fd(void);

/* ops.c */
void jvs_ops_install(struct fuse_lowlevel_ops *ops);
/* Whether jvs_ops_install registers the xattr ops (unregistered: the kernel answers EOPNOTSUPP itself). */
extern int jvs_xattrs;
extern pthread_rwlock_t jvs_gate;
extern __thread int jvs_gate_held;   /* this thread holds the gate shared already */
extern double jvs_current_timeout;   /* entry/attr timeout of current/ (seconds) */
extern double jvs_snapshot_timeout;  /* of immutable snapshot trees */
extern int jvs_switch_creds;         /* run requests with the caller's fsuid/fsgid */
extern int jvs_writeback;            /* the kernel's writeback cache is on */

/* virtual.c */
int jvs_virtual_start(napi_env env, napi_value handler);
void jvs_virtual_stop(void);
/* A request for a virtual inode: hand it to TypeScript. */
void jvs_virtual_dispatch(fuse_req_t req, const char *op, fuse_ino_t ino, const char *name, const void *data, size_t size, uint64_t a, uint64_t b, struct fuse_file_info *fi);
napi_value jvs_virtual_exports(napi_env env, napi_value exports);

/* dirty.c */
napi_value jvs_dirty_exports(napi_env env, napi_value exports);

/* session.c */
extern struct fuse_session *jvs_se;
/* Run fn(arg) on the session's pool (threads that may wait: the gate, the disk); -1: no memory. */
int jvs_pool_run(void (*fn)(void *), void *arg);

#endif
