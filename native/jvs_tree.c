/*
 * jvs_tree: tree scans and bulk hard links for incremental snapshots and restores.
 * (Functions are added by the following commits.)
 */
#define _GNU_SOURCE
#include <node_api.h>

napi_value jvs_tree_init(napi_env env, napi_value exports) {
  return exports;
}
