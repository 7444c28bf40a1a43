/*
 * jvs_hash: SHA-256 of many files on several threads, for first snapshots and verify.
 *
 *   hashMany(paths, count, mode, pre, threads)
 *     paths   "a\0b\0…" (hash mode: one path per job) or "src\0dst\0…" (copy modes)
 *     mode    0 hash, 1 reflink (FICLONE or fail), 2 copy (FICLONE, else copy while
 *             hashing), 3 copy without trying FICLONE
 *     pre     copy modes: BigInt64Array of 9 values per job: the source's stat when it
 *             was walked (ctime ns, mtime ns, size, ino: the racy-source check below),
 *             mode (permission bits of the destination; | 1<<20 = META: also set the
 *             destination's atime ns, mtime ns, uid, gid from the next 4 values; the
 *             owner only as root and best effort); null in hash mode
 *     mode | 8 (KNOWN, copy modes): the caller already knows each source's hash (its stat
 *             proved it unchanged): a clone is not read at all when the source's lstat
 *             after cloning still equals `pre`, and steady[i] = 1 says so (hash left
 *             zero); otherwise the clone is hashed. Copies without a clone hash as usual.
 *   hashMany(paths, count, mode, pre, threads, roots, expected)  (restore: mode | VERIFY)
 *     roots   [srcRoot, dstRoot] (restores, and snapshots copying from the worktree into
 *             their stage; null: absolute paths): every src/dst is a path relative to these folders,
 *             opened through a directory fd of the root with openat2(RESOLVE_BENEATH |
 *             RESOLVE_NO_SYMLINKS) (or, on kernels without openat2, a walk of O_NOFOLLOW
 *             opens): a symlink anywhere on the way, or `..`, fails with ELOOP/EXDEV
 *     expected  Buffer of 32 bytes per job, the manifest's content hashes; with VERIFY
 *             (16) each copy is checked against it before hashMany returns: a clone of a
 *             source whose fstat shows the manifest's size and mtime (pre[2], pre[1]) and
 *             did not change while cloning is trusted unread (steady[i] = 1); any other
 *             copy is hashed while copied (a clone: its own bytes) and a different hash,
 *             or a source that is not a regular file, fails with EBADMSG. The owner and
 *             atime come from the source's fstat (pre[5], pre[7], pre[8] are ignored).
 *   returns { hashes: "<64 hex chars per job>", sizes: Float64Array, cloneRefused: bool,
 *             byOtherThreads: jobs done by threads other than the caller, steady: Uint8Array }
 *
 * Why here and not in JavaScript: a first snapshot of 1 GiB / 10,000 files is CPU-bound
 * (SHA-256 ~1.3 GB/s per core from the page cache, FICLONE ~40 µs per file on XFS).
 * Threads started here cost microseconds (a worker thread costs ~30 ms) and work without
 * any per-file JavaScript. The calling thread works too and blocks until all are done:
 * operations run synchronously under the repository lock.
 *
 * A clone is hashed from its source (whose pages are cached; the clone's are not), and
 * that hash is used only when an lstat of the source after hashing matches the walked
 * stat (ctime, mtime, size, ino); otherwise the clone itself is hashed, so the hash is
 * always of what the snapshot holds. A plain copy hashes the bytes it writes (one read).
 *
 * Errors stop the hand-out of jobs; the first error is thrown as an Error with `code`
 * (errno name), `syscall`, `path` and `index` (the job). Destinations already made are
 * left for the caller's clean-up of its staging directory.
 *
 * SHA-256 comes from OpenSSL's EVP interface of the copy Node.js runs (Node ships its
 * headers; its symbols are looked up at load time, see load_openssl).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <node_api.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jvs_native.h"

#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

/*
 * libcrypto's digest functions, looked up in the running process (the node binary
 * exports them, or has libcrypto loaded) instead of being linked: a Node.js without
 * them must still load this addon (the other functions do not need them); hashMany is
 * then simply not offered and JavaScript hashes instead.
 */
static struct {
  EVP_MD_CTX *(*ctx_new)(void);
  void (*ctx_free)(EVP_MD_CTX *);
  int (*init)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
  int (*update)(EVP_MD_CTX *, const void *, size_t);
  int (*final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
  const EVP_MD *md;
} ossl;

static int load_openssl(void) {
  const EVP_MD *(*sha256)(void) = (const EVP_MD *(*)(void))dlsym(RTLD_DEFAULT, "EVP_sha256");
  ossl.ctx_new = (EVP_MD_CTX * (*)(void)) dlsym(RTLD_DEFAULT, "EVP_MD_CTX_new");
  ossl.ctx_free = (void (*)(EVP_MD_CTX *))dlsym(RTLD_DEFAULT, "EVP_MD_CTX_free");
  ossl.init = (int (*)(EVP_MD_CTX *, const EVP_MD *, ENGINE *))dlsym(RTLD_DEFAULT, "EVP_DigestInit_ex");
  ossl.update = (int (*)(EVP_MD_CTX *, const void *, size_t))dlsym(RTLD_DEFAULT, "EVP_DigestUpdate");
  ossl.final = (int (*)(EVP_MD_CTX *, unsigned char *, unsigned int *))dlsym(RTLD_DEFAULT, "EVP_DigestFinal_ex");
  if (!sha256 || !ossl.ctx_new || !ossl.ctx_free || !ossl.init || !ossl.update || !ossl.final) return 0;
  ossl.md = sha256();
  return ossl.md != NULL;
}

void *jvs_sha256_begin(void) {
  EVP_MD_CTX *ctx = ossl.ctx_new();
  if (ctx && ossl.init(ctx, ossl.md, NULL) != 1) {
    ossl.ctx_free(ctx);
    return NULL;
  }
  return ctx;
}

void jvs_sha256_add(void *ctx, const void *data, size_t n) {
  ossl.update(ctx, data, n);
}

void jvs_sha256_digest(void *ctx, unsigned char out[32]) {
  unsigned int len = 32;
  ossl.final(ctx, out, &len);
  ossl.init(ctx, ossl.md, NULL);
}

void jvs_sha256_free(void *ctx) {
  if (ctx) ossl.ctx_free(ctx);
}

enum { MODE_HASH = 0, MODE_REFLINK = 1, MODE_COPY = 2, MODE_COPY_NOCLONE = 3 };
#define KNOWN 8 /* with a copy mode: the caller knows the hashes; see hashMany's comment */
#define VERIFY 16 /* with a copy mode and `expected`: check each copy; see hashMany's comment */
enum { PRE = 9 };            /* values per job in `pre` */
#define META (1LL << 20)       /* in pre[4]: also set owner and times */
#define BUF_SIZE (256 << 10) /* stays in L2 while SHA-256 reads it back */
#define MAX_THREADS 64

typedef struct {
  /* inputs */
  const char **src, **dst;
  const int64_t *pre;
  size_t count;
  int mode;
  mode_t umask;
  int root; /* running as root: owners can be set */
  /* shared state */
  size_t next;          /* next job to hand out (atomic) */
  int stop;             /* set on the first error (atomic) */
  int clone_refused;    /* copy mode: FICLONE refused once, later jobs copy (atomic) */
  pthread_mutex_t mu;   /* guards the error fields */
  int err, err_index;
  const char *err_syscall, *err_path;
  int known;            /* KNOWN was given */
  int verify;           /* VERIFY was given */
  int src_root, dst_root; /* roots given: fds of the folders src/dst are relative to; else -1 */
  const unsigned char *expected; /* VERIFY: 32 bytes per job */
  /* outputs */
  unsigned char *steady; /* KNOWN: 1 = cloned from a source still as walked, no hash taken */
  unsigned char *hashes; /* 32 bytes per job */
  double *sizes;
} Run;

typedef struct {
  Run *run;
  unsigned char *buf;
  unsigned jobs; /* jobs this thread did */
} Worker;

static void fail(Run *r, size_t i, const char *syscall, const char *path, int e) {
  pthread_mutex_lock(&r->mu);
  if (r->err == 0) {
    r->err = e ? e : EIO;
    r->err_index = (int)i;
    r->err_syscall = syscall;
    r->err_path = path;
  }
  pthread_mutex_unlock(&r->mu);
  __atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
}

/* Zeros that stand for the holes of sparse files: hashed, never read or written. */
static const unsigned char zeros[BUF_SIZE];

/* Adds n zero bytes to the digest. */
static void hash_zeros(EVP_MD_CTX *ctx, int64_t n) {
  for (; n > 0; n -= BUF_SIZE) ossl.update(ctx, zeros, n < BUF_SIZE ? (size_t)n : BUF_SIZE);
}

/*
 * Hashes `in` from offset 0 to its end and, when out >= 0, copies it to `out` (also
 * from 0) in the same read; returns the bytes read, or -1 with errno and *syscall set.
 *
 * Sparse files (fewer blocks allocated than their size) are walked with
 * SEEK_DATA/SEEK_HOLE: only data runs are read and written; a hole is hashed as the
 * zeros it reads as (from a static buffer: SHA-256 must still see every byte, so the
 * CPU cost of a hole is hashing zeros, about 1 s per 1.3 GB, but it costs no I/O) and
 * left a hole in the copy (pwrite at the data's offsets, ftruncate for a final hole).
 * A 4 GiB file holding 8 KiB copies as 8 KiB. Small dense files take the plain loop:
 * one fstat is all the check costs. A file that grows while it is read is read to its new
 * end (the sparse walk hands over to plain reads at the size it started with).
 */
/*
 * Where a file's data lies: lseek(SEEK_DATA / SEEK_HOLE), or, where the filesystem serves
 * no SEEK_DATA (JuiceFS answers "all data"), the caller's list of data runs (`runs`:
 * n sorted start, end pairs; see hashRuns), answered the way lseek would.
 */
/* A non-NULL run list of length 0 (a file that is one hole). */
static const int64_t zeros_run[2];

static off_t seek_data(int fd, off_t at, int whence, const int64_t *runs, size_t n) {
  if (!runs) return lseek(fd, at, whence);
  for (size_t i = 0; i < n; i++) {
    if (runs[2 * i + 1] <= at) continue;
    if (whence == SEEK_DATA) return runs[2 * i] > at ? runs[2 * i] : at;
    return runs[2 * i] > at ? at : runs[2 * i + 1];
  }
  errno = ENXIO;
  return -1;
}

static int64_t copy_hash_runs(int in, int out, unsigned char *buf, unsigned char digest[32], const char **syscall, const int64_t *runs, size_t nruns);

static int64_t copy_hash_fd(int in, int out, unsigned char *buf, unsigned char digest[32], const char **syscall) {
  return copy_hash_runs(in, out, buf, digest, syscall, NULL, 0);
}

static int64_t copy_hash_runs(int in, int out, unsigned char *buf, unsigned char digest[32], const char **syscall, const int64_t *runs, size_t nruns) {
  EVP_MD_CTX *ctx = ossl.ctx_new();
  if (!ctx || ossl.init(ctx, ossl.md, NULL) != 1) {
    ossl.ctx_free(ctx);
    errno = ENOMEM;
    *syscall = "EVP_DigestInit";
    return -1;
  }
  int64_t total = 0, written_end = 0;
  struct stat st;
  if (fstat(in, &st) != 0) {
    *syscall = "fstat";
    goto fail;
  }
  /* Fewer blocks than bytes: holes. From 1 MiB up SEEK_DATA is asked anyway (two
     syscalls against at least four reads): some filesystems (JuiceFS) count blocks
     from the length. Where SEEK_DATA is not served, the file is one data run. */
  int sparse = S_ISREG(st.st_mode) && (runs || (int64_t)st.st_blocks * 512 < (int64_t)st.st_size || st.st_size >= (1 << 20));
  int64_t run_end = 0; /* sparse: end of the data run being read */
  for (;;) {
    if (sparse && total >= run_end) {
      off_t d = seek_data(in, total, SEEK_DATA, runs, nruns);
      off_t h = d >= 0 ? seek_data(in, d, SEEK_HOLE, runs, nruns) : -1;
      if (d < 0 && errno == ENXIO) {
        /* Only a hole from here to the size the walk started with; plain reads after it. */
        if ((int64_t)st.st_size > total) {
          hash_zeros(ctx, (int64_t)st.st_size - total);
          total = (int64_t)st.st_size;
        }
        sparse = 0;
        continue;
      }
      if (d < 0 || h < 0) { /* no SEEK_DATA here: plain reads from this offset */
        sparse = 0;
        continue;
      }
      if (d > total) {
        hash_zeros(ctx, (int64_t)d - total);
        total = (int64_t)d;
      }
      run_end = (int64_t)h;
    }
    size_t want = BUF_SIZE;
    if (sparse && run_end - total < (int64_t)want) want = (size_t)(run_end - total);
    ssize_t n = pread(in, buf, want, total);
    if (n < 0) {
      if (errno == EINTR) continue;
      *syscall = "read";
      goto fail;
    }
    if (n == 0) break;
    ossl.update(ctx, buf, (size_t)n);
    for (ssize_t off = 0; out >= 0 && off < n;) {
      ssize_t w = pwrite(out, buf + off, (size_t)(n - off), total + off);
      if (w < 0) {
        if (errno == EINTR) continue;
        *syscall = "write";
        goto fail;
      }
      off += w;
    }
    total += n;
    written_end = total;
  }
  /* A final hole: the copy gets its size without writing it. */
  if (out >= 0 && total > written_end && ftruncate(out, total) != 0) {
    *syscall = "ftruncate";
    goto fail;
  }
  unsigned int len = 32;
  ossl.final(ctx, digest, &len);
  ossl.ctx_free(ctx);
  return total;
fail:;
  int e = errno;
  ossl.ctx_free(ctx);
  errno = e;
  return -1;
}

/* Hashes fd from offset 0 to its end; returns bytes read or -1 (errno set). */
static int64_t hash_fd(int fd, unsigned char *buf, unsigned char out[32]) {
  const char *syscall;
  return copy_hash_fd(fd, -1, buf, out, &syscall);
}

/* Errors that mean "this filesystem does not clone", not "this file failed". */
static int clone_unsupported(int e) {
  return e == EOPNOTSUPP || e == ENOTTY || e == EXDEV || e == EINVAL || e == ENOSYS || e == EPERM || e == EBADF;
}

/*
 * Opens a file to read without updating its atime where allowed (owner or root): a
 * snapshot or verify should not write to the inodes it reads (with relatime the first
 * read after a write would cost a journaled inode update per file).
 */
static int open_read(const char *path, int flags) {
  int fd = open(path, flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(path, flags);
  return fd;
}

/* The job's source (read) or destination (create), by absolute path or below its root. */
static int open_src(Run *r, size_t i) {
  if (r->src_root < 0) return open_read(r->src[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int fd = jvs_open_beneath(r->src_root, r->src[i], O_RDONLY | O_NONBLOCK | O_NOATIME, 0);
  if (fd < 0 && errno == EPERM) fd = jvs_open_beneath(r->src_root, r->src[i], O_RDONLY | O_NONBLOCK, 0);
  return fd;
}

static int open_dst(Run *r, size_t i, mode_t mode) {
  int flags = (r->verify ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL | O_CLOEXEC;
  if (r->dst_root < 0) return open(r->dst[i], flags, mode);
  return jvs_open_beneath(r->dst_root, r->dst[i], flags, mode);
}

static int64_t ns_of(struct timespec t) {
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void do_hash(Run *r, size_t i, unsigned char *buf) {
  int fd = r->src_root < 0 ? open_read(r->src[i], O_RDONLY | O_CLOEXEC) : open_src(r, i);
  if (fd < 0) return fail(r, i, "open", r->src[i], errno);
  int64_t n = hash_fd(fd, buf, r->hashes + 32 * i);
  int e = errno;
  close(fd);
  if (n < 0) return fail(r, i, "read", r->src[i], e);
  r->sizes[i] = (double)n;
}

static struct timespec ns_time(int64_t ns) {
  struct timespec t = {ns / 1000000000LL, ns % 1000000000LL};
  if (t.tv_nsec < 0) t.tv_nsec += 1000000000LL, t.tv_sec -= 1;
  return t;
}

/*
 * The destination's mode (O_CREAT applied the umask and dropped set-id bits) and, for a
 * job with META, the owner (as root, best effort like applyMetadata) and the walked
 * atime/mtime, set through the open fd before it is closed. Returns the failing
 * syscall's name, or NULL.
 */
static const char *finish_dst(Run *r, int out, const int64_t *pre) {
  mode_t mode = (mode_t)(pre[4] & 07777);
  int meta = (pre[4] & META) != 0;
  int chowned = 0;
  if (meta && r->root) {
    struct stat have;
    if (fstat(out, &have) != 0) return "fstat";
    if ((int64_t)have.st_uid != pre[7] || (int64_t)have.st_gid != pre[8])
      chowned = fchown(out, (uid_t)pre[7], (gid_t)pre[8]) == 0; /* chown clears set-id bits: mode again below */
  }
  if ((chowned || (mode & 07000) != 0 || (mode & r->umask & 0777) != 0) && fchmod(out, mode) != 0) return "fchmod";
  if (meta) {
    struct timespec ts[2] = {ns_time(pre[5]), ns_time(pre[6])};
    if (futimens(out, ts) != 0) return "futimens";
  }
  return NULL;
}

/* Whether job i's source (lstat, or an O_PATH open beneath its root) still shows the walked ctime, mtime, size and inode (and `n` bytes were read). */
static int as_walked(Run *r, size_t i, const int64_t *pre, int64_t n) {
  struct stat a;
  int got;
  if (r->src_root < 0) got = lstat(r->src[i], &a) == 0;
  else {
    int fd = jvs_open_beneath(r->src_root, r->src[i], O_PATH, 0);
    got = fd >= 0 && fstat(fd, &a) == 0;
    if (fd >= 0) close(fd);
  }
  return got && (int64_t)a.st_ctim.tv_sec * 1000000000LL + a.st_ctim.tv_nsec == pre[0] &&
         (int64_t)a.st_mtim.tv_sec * 1000000000LL + a.st_mtim.tv_nsec == pre[1] && (int64_t)a.st_size == pre[2] &&
         (int64_t)a.st_ino == pre[3] && n == pre[2];
}

static void do_copy(Run *r, size_t i, unsigned char *buf) {
  const char *src = r->src[i], *dst = r->dst[i];
  int64_t pre[PRE];
  memcpy(pre, r->pre + PRE * i, sizeof pre);
  mode_t mode = (mode_t)(pre[4] & 07777);
  unsigned char *digest = r->hashes + 32 * i;
  const unsigned char *want = r->verify ? r->expected + 32 * i : NULL;
  const char *syscall;
  int in = open_src(r, i);
  if (in < 0) return fail(r, i, "open", src, errno);
  struct stat st0;
  int trusted = 0; /* VERIFY: the source's stat is the manifest's */
  if (want) {
    if (fstat(in, &st0) != 0) {
      int e = errno;
      close(in);
      return fail(r, i, "fstat", src, e);
    }
    if (!S_ISREG(st0.st_mode)) {
      close(in);
      return fail(r, i, "verify", src, EBADMSG);
    }
    trusted = st0.st_size == pre[2] && ns_of(st0.st_mtim) == pre[1];
    /* The payload's own owner and access time go to the copy (as the walk would give them). */
    pre[5] = ns_of(st0.st_atim);
    pre[7] = st0.st_uid;
    pre[8] = st0.st_gid;
  }
  int out = open_dst(r, i, mode & 0777);
  if (out < 0) {
    int e = errno;
    close(in);
    return fail(r, i, "open", dst, e);
  }
  int try_clone = r->mode == MODE_REFLINK || (r->mode == MODE_COPY && !__atomic_load_n(&r->clone_refused, __ATOMIC_RELAXED));
  if (try_clone && ioctl(out, FICLONE, in) == 0) {
    if ((syscall = finish_dst(r, out, pre)) != NULL) {
      int e = errno;
      close(in);
      close(out);
      return fail(r, i, syscall, dst, e);
    }
    int64_t n;
    int e;
    if (want) {
      /* Trusted unread only when the source did not change while it was cloned. */
      struct stat st1;
      int steady = trusted && fstat(in, &st1) == 0 && ns_of(st1.st_ctim) == ns_of(st0.st_ctim) && st1.st_size == st0.st_size &&
                   ns_of(st1.st_mtim) == ns_of(st0.st_mtim);
      close(in);
      if (steady) {
        close(out);
        r->steady[i] = 1;
        r->sizes[i] = (double)pre[2];
        return;
      }
      n = hash_fd(out, buf, digest);
      e = errno;
      close(out);
      if (n < 0) return fail(r, i, "read", dst, e);
      if (memcmp(digest, want, 32) != 0) return fail(r, i, "verify", src, EBADMSG);
      r->sizes[i] = (double)n;
      return;
    }
    close(out);
    if (r->known) {
      /* The caller's hash holds if the source is still as walked after the clone. */
      close(in);
      if (as_walked(r, i, pre, pre[2])) {
        r->steady[i] = 1;
        r->sizes[i] = (double)pre[2];
        return;
      }
    } else {
      /* Hash the source through the fd we cloned from; keep that hash only when the
         path still shows the walked stat (no write, no replacement since the walk). */
      n = hash_fd(in, buf, digest);
      e = errno;
      close(in);
      if (n < 0) return fail(r, i, "read", src, e);
      if (as_walked(r, i, pre, n)) {
        r->sizes[i] = (double)n;
        return;
      }
    }
    int c = r->dst_root < 0 ? open(dst, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : jvs_open_beneath(r->dst_root, dst, O_RDONLY, 0);
    if (c < 0) return fail(r, i, "open", dst, errno);
    n = hash_fd(c, buf, digest);
    e = errno;
    close(c);
    if (n < 0) return fail(r, i, "read", dst, e);
    r->sizes[i] = (double)n;
    return;
  }
  if (try_clone) {
    int e = errno;
    if (r->mode == MODE_REFLINK || !clone_unsupported(e)) {
      close(in);
      close(out);
      return fail(r, i, "ioctl_ficlone", src, e);
    }
    __atomic_store_n(&r->clone_refused, 1, __ATOMIC_RELAXED);
  }
  syscall = "read";
  int64_t n = copy_hash_fd(in, out, buf, digest, &syscall);
  int e = errno;
  close(in);
  if (n < 0) {
    close(out);
    return fail(r, i, syscall, syscall[0] == 'w' ? dst : src, e);
  }
  if (want && memcmp(digest, want, 32) != 0) {
    close(out);
    return fail(r, i, "verify", src, EBADMSG);
  }
  if ((syscall = finish_dst(r, out, pre)) != NULL) {
    e = errno;
    close(out);
    return fail(r, i, syscall, dst, e);
  }
  /* Start writing the copy to disk now, without waiting: the caller's later flush of the
     whole tree (syncfs) then finds most of it written instead of starting all of it. */
  sync_file_range(out, 0, 0, SYNC_FILE_RANGE_WRITE);
  if (close(out) != 0) return fail(r, i, "close", dst, errno);
  r->sizes[i] = (double)n;
}

static void *work(void *arg) {
  Worker *w = arg;
  Run *r = w->run;
  while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
    size_t i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
    if (i >= r->count) break;
    if (r->mode == MODE_HASH) do_hash(r, i, w->buf);
    else do_copy(r, i, w->buf);
    w->jobs++;
  }
  return NULL;
}

static napi_value throw_run_error(napi_env env, Run *r) {
  char msg[4400];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", jvs_errno_name(r->err), strerror(r->err), r->err_syscall, r->err_path);
  napi_value code, text, err, v;
  napi_create_string_utf8(env, jvs_errno_name(r->err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_set_named_property(env, err, "code", code);
  napi_create_int32(env, -r->err, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, r->err_syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  jvs_create_name(env, r->err_path, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "path", v);
  napi_create_int32(env, r->err_index, &v);
  napi_set_named_property(env, err, "index", v);
  napi_throw(env, err);
  return NULL;
}

/* The process umask without changing it (umask(2) can only set it; threads may be creating files). */
static mode_t current_umask(void) {
  mode_t m = 022;
  FILE *f = fopen("/proc/self/status", "re");
  if (!f) return m;
  char line[256];
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "Umask:", 6) == 0) {
      m = (mode_t)strtoul(line + 6, NULL, 8);
      break;
    }
  fclose(f);
  return m;
}

static napi_value hash_many(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "hashMany(paths, count, mode, pre, threads)");
    return NULL;
  }
  uint32_t count, mode, threads;
  if (napi_get_value_uint32(env, argv[1], &count) != napi_ok || napi_get_value_uint32(env, argv[2], &mode) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &threads) != napi_ok || (mode & ~(KNOWN | VERIFY)) > MODE_COPY_NOCLONE ||
      (mode != MODE_HASH && (mode & ~(KNOWN | VERIFY)) == MODE_HASH)) {
    napi_throw_type_error(env, NULL, "hashMany: count, mode and threads must be small unsigned integers");
    return NULL;
  }
  size_t per = mode == MODE_HASH ? 1 : 2;
  const int64_t *pre = NULL;
  if (mode != MODE_HASH) {
    napi_typedarray_type type;
    size_t len;
    void *data;
    if (napi_get_typedarray_info(env, argv[3], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_bigint64_array ||
        len != (size_t)count * PRE) {
      napi_throw_type_error(env, NULL, "hashMany: pre must be a BigInt64Array of 9 values per job");
      return NULL;
    }
    pre = data;
  }
  /* Optional roots [srcRoot, dstRoot] and, with VERIFY, the expected hashes. */
  char root_path[2][4096];
  int have_roots = 0;
  const unsigned char *expected = NULL;
  if (argc >= 6) {
    napi_valuetype t;
    napi_typeof(env, argv[5], &t);
    if (t == napi_object) {
      for (uint32_t k = 0; k < 2; k++) {
        napi_value v;
        size_t got = 0;
        if (napi_get_element(env, argv[5], k, &v) != napi_ok ||
            napi_get_value_string_utf8(env, v, root_path[k], sizeof root_path[k], &got) != napi_ok || got >= sizeof root_path[k] - 1) {
          napi_throw_type_error(env, NULL, "hashMany: roots must be [srcRoot, dstRoot]");
          return NULL;
        }
      }
      have_roots = 1;
    }
  }
  if (mode & VERIFY) {
    void *data = NULL;
    size_t len = 0;
    bool is_buffer = false;
    if (argc < 7 || napi_is_buffer(env, argv[6], &is_buffer) != napi_ok || !is_buffer ||
        napi_get_buffer_info(env, argv[6], &data, &len) != napi_ok || len != 32 * (size_t)count) {
      napi_throw_type_error(env, NULL, "hashMany: VERIFY needs a Buffer of 32 bytes per job");
      return NULL;
    }
    expected = data;
  }
  size_t bytes;
  char *text = jvs_get_path(env, argv[0], &bytes); /* names as jvs_names.c carries them */
  if (!text) return NULL;
  Run r;
  memset(&r, 0, sizeof r);
  r.src = calloc(count ? count : 1, sizeof *r.src);
  r.dst = per == 2 ? calloc(count ? count : 1, sizeof *r.dst) : NULL;
  r.hashes = calloc(count ? count : 1, 32);
  void *sizes_data, *steady_data;
  napi_value sizes_buf, sizes, steady_buf, steady;
  if (napi_create_arraybuffer(env, 8 * (size_t)count, &sizes_data, &sizes_buf) != napi_ok) goto oom;
  if (napi_create_arraybuffer(env, (size_t)count, &steady_data, &steady_buf) != napi_ok) goto oom;
  r.sizes = sizes_data;
  r.steady = steady_data;
  memset(r.steady, 0, count);
  if (!text || !r.src || (per == 2 && !r.dst) || !r.hashes) goto oom;
  /* Split "a\0b\0…" into count * per strings. */
  {
    char *p = text, *end = text + bytes;
    for (size_t i = 0; i < count; i++) {
      for (size_t k = 0; k < per; k++) {
        if (p >= end) {
          free(text), free(r.src), free(r.dst), free(r.hashes);
          napi_throw_range_error(env, NULL, "hashMany: fewer paths than count");
          return NULL;
        }
        if (k == 0) r.src[i] = p;
        else r.dst[i] = p;
        p += strlen(p) + 1;
      }
    }
  }
  r.pre = pre;
  r.count = count;
  r.known = (mode & KNOWN) != 0;
  r.verify = (mode & VERIFY) != 0;
  r.expected = expected;
  r.mode = (int)(mode & ~(KNOWN | VERIFY));
  mode &= ~(KNOWN | VERIFY);
  r.src_root = r.dst_root = -1;
  if (have_roots) {
    for (int k = 0; k < 2; k++) {
      int fd = open(root_path[k], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        int e = errno;
        if (r.src_root >= 0) close(r.src_root);
        free(text), free(r.src), free(r.dst), free(r.hashes);
        char msg[4200];
        snprintf(msg, sizeof msg, "%s: %s, open '%s'", jvs_errno_name(e), strerror(e), root_path[k]);
        napi_value code, m, err;
        napi_create_string_utf8(env, jvs_errno_name(e), NAPI_AUTO_LENGTH, &code);
        napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
        napi_create_error(env, code, m, &err);
        napi_set_named_property(env, err, "code", code);
        napi_create_string_utf8(env, root_path[k], NAPI_AUTO_LENGTH, &m);
        napi_set_named_property(env, err, "path", m);
        napi_throw(env, err);
        return NULL;
      }
      if (k == 0) r.src_root = fd;
      else r.dst_root = fd;
    }
  }
  if (mode != MODE_HASH) r.umask = current_umask();
  r.root = geteuid() == 0;
  pthread_mutex_init(&r.mu, NULL);
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (threads > count) threads = count ? count : 1;

  Worker workers[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  unsigned started = 0;
  for (unsigned t = 0; t < threads; t++) {
    workers[t].run = &r;
    workers[t].jobs = 0;
    workers[t].buf = aligned_alloc(4096, BUF_SIZE);
    if (!workers[t].buf) break;
    /* Worker 0 is this thread; the others get their own. */
    if (t > 0 && pthread_create(&tids[t], NULL, work, &workers[t]) != 0) {
      free(workers[t].buf);
      break;
    }
    started = t + 1;
  }
  if (started == 0) {
    pthread_mutex_destroy(&r.mu);
    if (r.src_root >= 0) close(r.src_root);
    if (r.dst_root >= 0) close(r.dst_root);
    goto oom;
  }
  work(&workers[0]);
  for (unsigned t = 1; t < started; t++) pthread_join(tids[t], NULL);
  for (unsigned t = 0; t < started; t++) free(workers[t].buf);
  pthread_mutex_destroy(&r.mu);
  if (r.src_root >= 0) close(r.src_root);
  if (r.dst_root >= 0) close(r.dst_root);

  napi_value result = NULL;
  if (r.err) {
    throw_run_error(env, &r);
  } else {
    static const char hex[] = "0123456789abcdef";
    char *h = malloc(64 * (size_t)(count ? count : 1));
    if (!h) {
      free(text), free(r.src), free(r.dst), free(r.hashes);
      goto oom_after;
    }
    for (size_t i = 0; i < 32 * (size_t)count; i++) {
      h[2 * i] = hex[r.hashes[i] >> 4];
      h[2 * i + 1] = hex[r.hashes[i] & 15];
    }
    napi_value hs, refused, others;
    unsigned by_others = 0;
    for (unsigned t = 1; t < started; t++) by_others += workers[t].jobs;
    napi_create_uint32(env, by_others, &others);
    napi_create_string_latin1(env, h, 64 * (size_t)count, &hs);
    free(h);
    napi_create_typedarray(env, napi_float64_array, count, sizes_buf, 0, &sizes);
    napi_get_boolean(env, r.clone_refused != 0, &refused);
    napi_create_object(env, &result);
    napi_set_named_property(env, result, "hashes", hs);
    napi_set_named_property(env, result, "sizes", sizes);
    napi_set_named_property(env, result, "cloneRefused", refused);
    napi_set_named_property(env, result, "byOtherThreads", others);
    napi_create_typedarray(env, napi_uint8_array, count, steady_buf, 0, &steady);
    napi_set_named_property(env, result, "steady", steady);
  }
  free(text), free(r.src), free(r.dst), free(r.hashes);
  return result;
oom:
  free(text), free(r.src), free(r.dst), free(r.hashes);
oom_after:
  napi_throw_error(env, "ENOMEM", "hashMany: out of memory");
  return NULL;
}

/*
 * hashRuns(path, runs) -> { hash, size }: SHA-256 of one file whose data runs the caller
 * knows (BigInt64Array of sorted, non-overlapping start, end pairs) on a filesystem that
 * serves no SEEK_DATA (JuiceFS: `juicefs info` lists a file's slices). copy_hash_fd's
 * sparse walk with those runs instead of lseek: only the runs are read, every other byte
 * is hashed as the zero it reads as. The file is opened O_NOFOLLOW; hashRuns(rel, runs,
 * root) opens it below a directory fd of root instead (jvs_open_beneath: no symlink at all).
 */
static napi_value hash_runs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  napi_valuetype root_type = napi_undefined;
  if (argc > 2) napi_typeof(env, argv[2], &root_type);
  if (argc < 2 || napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_bigint64_array || len % 2) {
    napi_throw_type_error(env, NULL, "hashRuns(path, runs: BigInt64Array of start, end pairs)");
    return NULL;
  }
  const int64_t *runs = data;
  for (size_t i = 0; i < len; i++) {
    if (runs[i] < 0 || (i && runs[i] < runs[i - 1])) {
      napi_throw_range_error(env, NULL, "hashRuns: runs must be sorted, non-overlapping and non-negative");
      return NULL;
    }
  }
  char *path = jvs_get_path(env, argv[0], NULL);
  if (!path) return NULL;
  int root = -1;
  if (root_type == napi_string) { /* path is relative to root: opened below its fd */
    char *root_path = jvs_get_path(env, argv[2], NULL);
    if (!root_path) {
      free(path);
      return NULL;
    }
    root = open(root_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    free(root_path);
  }
  unsigned char *buf = aligned_alloc(4096, BUF_SIZE);
  unsigned char digest[32];
  const char *syscall = "open";
  int64_t n = -1;
  int fd = -1;
  if (!buf) errno = ENOMEM;
  else if (root_type != napi_string) fd = open_read(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  else if (root >= 0) {
    fd = jvs_open_beneath(root, path, O_RDONLY | O_NONBLOCK | O_NOATIME, 0);
    if (fd < 0 && errno == EPERM) fd = jvs_open_beneath(root, path, O_RDONLY | O_NONBLOCK, 0);
  }
  if (root >= 0) {
    int e = errno;
    close(root);
    errno = e;
  }
  if (fd >= 0) {
    n = copy_hash_runs(fd, -1, buf, digest, &syscall, len ? runs : zeros_run, len / 2);
    int e = errno;
    close(fd);
    errno = e;
  }
  free(buf);
  if (n < 0) {
    int e = errno;
    char msg[4400];
    snprintf(msg, sizeof msg, "%s: %s, %s '%s'", jvs_errno_name(e), strerror(e), syscall, path);
    free(path);
    napi_value code, text, err;
    napi_create_string_utf8(env, jvs_errno_name(e), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &err);
    napi_set_named_property(env, err, "code", code);
    napi_throw(env, err);
    return NULL;
  }
  free(path);
  char hex[65];
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_string_utf8(env, hex, 64, &v);
  napi_set_named_property(env, out, "hash", v);
  napi_create_double(env, (double)n, &v);
  napi_set_named_property(env, out, "size", v);
  return out;
}

napi_value jvs_hash_init(napi_env env, napi_value exports) {
  if (!load_openssl()) return exports;
  napi_property_descriptor props[] = {
    {"hashMany", NULL, hash_many, NULL, NULL, NULL, napi_default, NULL},
    {"hashRuns", NULL, hash_runs, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return jvs_roothash_init(env, exports);
}
