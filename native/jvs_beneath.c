/*
 * jvs_beneath: one file of a worktree or snapshot opened through a directory fd of its
 * root, for JavaScript code that reads small files there (`.jvsignore`).
 *   openBeneath(root, rel, flags) -> fd
 *       root is opened O_PATH | O_DIRECTORY | O_NOFOLLOW (a root that is a symlink
 *       fails with ENOTDIR); rel is opened below it with jvs_open_beneath (openat2
 *       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk): a symlink
 *       anywhere, the last component included, fails with ELOOP, `..` with EXDEV.
 *       `flags` are open(2) flags (O_NONBLOCK keeps a FIFO from blocking the open);
 *       the caller owns the fd (fs.closeSync). Throws with `code` set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jvs_native.h"

static napi_value throw_errno(napi_env env, const char *what, const char *path, int e) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s: %s (%s)", jvs_errno_name(e), strerror(e), path);
  napi_value code, text, err;
  napi_create_string_utf8(env, jvs_errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_value syscall;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &syscall);
  napi_set_named_property(env, err, "syscall", syscall);
  napi_set_named_property(env, err, "code", code);
  napi_throw(env, err);
  return NULL;
}

static napi_value open_beneath_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 3) return napi_throw_type_error(env, NULL, "openBeneath(root, rel, flags)"), NULL;
  int32_t flags = 0;
  if (napi_get_value_int32(env, argv[2], &flags) != napi_ok) return napi_throw_type_error(env, NULL, "openBeneath: flags must be a number"), NULL;
  char *root = jvs_get_path(env, argv[0], NULL);
  if (!root) return NULL;
  char *rel = jvs_get_path(env, argv[1], NULL);
  if (!rel) {
    free(root);
    return NULL;
  }
  napi_value out = NULL;
  int dir = open(root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) {
    out = throw_errno(env, "open", root, errno);
  } else {
    int fd = jvs_open_beneath(dir, rel, flags & ~O_CREAT, 0);
    int e = errno;
    close(dir);
    if (fd < 0) out = throw_errno(env, "openat2", rel, e);
    else napi_create_int32(env, fd, &out);
  }
  free(root);
  free(rel);
  return out;
}

napi_value jvs_beneath_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"openBeneath", NULL, open_beneath_js, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
