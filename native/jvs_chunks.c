/*
 * jvs_chunks: where the index cuts a manifest into chunks (src/index/manifestCodec.ts).
 *
 *   relHashes(rels, count)
 *     rels    one string: the entries' paths joined with "\0" (one JavaScript join)
 *     count   how many paths it holds
 *   returns a Uint32Array of count FNV-1a hashes, each over its path's UTF-16 code units
 *           exactly as manifestCodec.ts's fnv1a computes them (which stays the
 *           definition), or null when the string does not split into count paths (a
 *           path holding "\0"); the caller then hashes in JavaScript.
 *
 * Why here: a chunk cut depends on every path's hash, and a one-shot CLI runs that loop
 * (10,000 paths, ~150,000 code units) before V8 has optimised it: 10-15 ms of a
 * snapshot or restore in the interpreter, well under 1 ms here.
 */
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>

static napi_value rel_hashes(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t0 = napi_undefined;
  uint32_t count = 0;
  if (argc < 2 || napi_typeof(env, argv[0], &t0) != napi_ok || t0 != napi_string || napi_get_value_uint32(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "relHashes(rels: string, count: number)");
    return NULL;
  }
  size_t len = 0;
  napi_get_value_string_utf16(env, argv[0], NULL, 0, &len);
  char16_t *units = malloc((len + 1) * sizeof *units);
  uint32_t *h = malloc((count ? count : 1) * sizeof *h);
  if (!units || !h) {
    free(units), free(h);
    napi_throw_error(env, "ENOMEM", "relHashes: out of memory");
    return NULL;
  }
  napi_get_value_string_utf16(env, argv[0], units, len + 1, &len);
  size_t k = 0;
  uint32_t x = 0x811c9dc5u;
  int fits = count > 0;
  for (size_t i = 0; i <= len && fits; i++) {
    if (i == len || units[i] == 0) {
      if (k == count) fits = 0;
      else h[k++] = x, x = 0x811c9dc5u;
    } else {
      x ^= units[i];
      x *= 0x01000193u;
    }
  }
  if (!fits || k != count) {
    free(units), free(h);
    napi_get_null(env, &result);
    return result;
  }
  free(units);
  napi_value ab;
  void *data;
  if (napi_create_arraybuffer(env, count * sizeof *h, &data, &ab) != napi_ok) {
    free(h);
    return NULL;
  }
  for (size_t i = 0; i < count; i++) ((uint32_t *)data)[i] = h[i];
  free(h);
  napi_create_typedarray(env, napi_uint32_array, count, ab, 0, &result);
  return result;
}

napi_value jvs_chunks_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"relHashes", NULL, rel_hashes, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
