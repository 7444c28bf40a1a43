/*
 * jvs_procfd: which other processes hold files open below a folder, read from
 * /proc/<pid>/fd on a background thread.
 *
 *   openFilesStart(prefix)  starts the scan; prefix is the folder's path with a final "/"
 *   openFilesWait(handle)   joins it: [{ pid, target, command }] for every distinct
 *                           fd target that starts with prefix (targets of deleted
 *                           files, " (deleted)", left out)
 *
 * A restore asks this only to warn about files it replaces while another process holds
 * them; the answer costs one readlink per open fd on the machine, which on a busy host
 * (hundreds of processes, an editor with thousands of fds) is tens to hundreds of
 * milliseconds in JavaScript. Here it runs on its own thread while the restore opens the
 * index and plans, and costs about a microsecond per fd. Processes we may not inspect
 * (other users', when not root) are skipped, as are processes that end meanwhile.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jvs_native.h"

typedef struct {
  int pid;
  char *target;
  char comm[32];
} Found;

typedef struct {
  pthread_t tid;
  int started, joined;
  char *prefix;
  size_t prefix_len;
  Found *found;
  size_t n, cap;
} Scan;

static int all_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}

static void read_comm(int pid, char out[32]) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/comm", pid);
  strcpy(out, "?");
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t k = read(fd, out, 31);
  close(fd);
  if (k <= 0) {
    strcpy(out, "?");
    return;
  }
  out[k] = 0;
  char *nl = strchr(out, '\n');
  if (nl) *nl = 0;
}

static void add(Scan *s, int pid, const char *target, const char *comm) {
  for (size_t i = 0; i < s->n; i++) /* the same file through several fds of one process: once */
    if (s->found[i].pid == pid && strcmp(s->found[i].target, target) == 0) return;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 16;
    Found *f = realloc(s->found, cap * sizeof *f);
    if (!f) return;
    s->found = f;
    s->cap = cap;
  }
  char *t = strdup(target);
  if (!t) return;
  s->found[s->n].pid = pid;
  s->found[s->n].target = t;
  snprintf(s->found[s->n].comm, sizeof s->found[s->n].comm, "%s", comm);
  s->n++;
}

static void *scan_run(void *arg) {
  Scan *s = arg;
  DIR *proc = opendir("/proc");
  if (!proc) return NULL;
  int self = getpid();
  struct dirent *de;
  char path[320], target[4097];
  while ((de = readdir(proc)) != NULL) {
    if (!all_digits(de->d_name)) continue;
    int pid = atoi(de->d_name);
    if (pid == self) continue;
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) continue; /* gone, or not ours to see */
    DIR *fds = fdopendir(dfd);
    if (!fds) {
      close(dfd);
      continue;
    }
    char comm[32] = "";
    struct dirent *fe;
    while ((fe = readdir(fds)) != NULL) {
      if (fe->d_name[0] == '.') continue;
      ssize_t k = readlinkat(dirfd(fds), fe->d_name, target, sizeof target - 1);
      if (k <= 0) continue;
      target[k] = 0;
      if ((size_t)k < s->prefix_len || memcmp(target, s->prefix, s->prefix_len) != 0) continue;
      if (k > 10 && strcmp(target + k - 10, " (deleted)") == 0) continue;
      if (!comm[0]) read_comm(pid, comm);
      add(s, pid, target, comm);
    }
    closedir(fds);
  }
  closedir(proc);
  return NULL;
}

static void scan_join(Scan *s) {
  if (s->started && !s->joined) {
    pthread_join(s->tid, NULL);
    s->joined = 1;
  }
}

static void scan_free(napi_env env, void *data, void *hint) {
  Scan *s = data;
  scan_join(s);
  for (size_t i = 0; i < s->n; i++) free(s->found[i].target);
  free(s->found);
  free(s->prefix);
  free(s);
}

static napi_value open_files_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "openFilesStart(prefix)");
    return NULL;
  }
  size_t len = 0;
  char *prefix = jvs_get_path(env, argv[0], &len);
  if (!prefix) return NULL;
  Scan *s = calloc(1, sizeof *s);
  if (!s) {
    free(prefix);
    napi_throw_error(env, "ENOMEM", "openFilesStart: out of memory");
    return NULL;
  }
  s->prefix = prefix;
  s->prefix_len = len;
  s->started = pthread_create(&s->tid, NULL, scan_run, s) == 0;
  napi_value handle;
  napi_create_external(env, s, scan_free, NULL, &handle);
  return handle;
}

static napi_value open_files_wait(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "openFilesWait(handle)");
    return NULL;
  }
  Scan *s = data;
  scan_join(s);
  napi_value out;
  napi_create_array_with_length(env, s->n, &out);
  for (size_t i = 0; i < s->n; i++) {
    napi_value o, v;
    napi_create_object(env, &o);
    napi_create_int32(env, s->found[i].pid, &v);
    napi_set_named_property(env, o, "pid", v);
    if (jvs_create_name(env, s->found[i].target, NAPI_AUTO_LENGTH, &v) != napi_ok) return NULL;
    napi_set_named_property(env, o, "target", v);
    napi_create_string_utf8(env, s->found[i].comm, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, o, "command", v);
    napi_set_element(env, out, (uint32_t)i, o);
  }
  return out;
}

napi_value jvs_procfd_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"openFilesStart", NULL, open_files_start, NULL, NULL, NULL, napi_default, NULL},
    {"openFilesWait", NULL, open_files_wait, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}
